#include "src/pipeline/router.h"

namespace pgfanout {

Router::Router(const SinkConfig& sink, const std::vector<TableConfig>& tables)
    : all_tenants_(sink.AllTenants()), tenants_(sink.tenants.begin(), sink.tenants.end()) {
  for (const auto& t : sink.tables) {
    tables_.insert(t.source);
    // Parsed when the config was read; an error here cannot happen for a loaded config.
    if (!t.where.empty()) {
      if (auto p = Predicate::Parse(t.where)) predicates_.emplace(t.source, std::move(p).value());
    }
  }
  for (const auto& t : tables) {
    if (!t.tenant_column.empty()) tenant_columns_[t.QualifiedName()] = t.tenant_column;
  }
}

bool Router::Serves(const std::optional<std::string>& tenant) const {
  return all_tenants_ || (tenant.has_value() && tenants_.count(*tenant) > 0);
}

std::optional<std::string> Router::OldTenant(const ChangeEvent& event) const {
  if (event.op != Op::kUpdate || event.old_row.empty()) return std::nullopt;
  // Decoded with the tenant column of its time, as `tenant` was: what the log indexed.
  if (event.old_tenant) return event.old_tenant;
  auto column = tenant_columns_.find(event.table->QualifiedName());
  if (column == tenant_columns_.end()) return std::nullopt;
  const auto& columns = event.table->columns;
  for (size_t i = 0; i < columns.size() && i < event.old_row.size(); ++i) {
    if (columns[i].name != column->second) continue;
    const Datum& d = event.old_row[i];
    // A key-only old row carries the tenant only when it is part of the key.
    if (event.old_is_key_only && !columns[i].part_of_key) return std::nullopt;
    if (d.kind != ValueKind::kText) return std::nullopt;
    return d.text;
  }
  return std::nullopt;
}

bool Router::Accepts(const ChangeEvent& event) const {
  if (!tables_.empty() && !tables_.count(event.table->QualifiedName())) return false;
  if (all_tenants_) return true;
  if (event.op == Op::kTruncate) return tenant_columns_.count(event.table->QualifiedName()) > 0;
  return Serves(event.tenant) || Serves(OldTenant(event));
}

bool Router::MayAccept(const EventLog::EventPeek& peek) const {
  // Runs for every event a sink looks at: the table's name is built only where needed (a
  // sink of one tenant among many refuses most events on their tenant alone).
  if (!tables_.empty() && !tables_.count(peek.table->QualifiedName())) return false;
  if (all_tenants_) return true;
  if (peek.op != Op::kTruncate && peek.tenant && tenants_.find(*peek.tenant) != tenants_.end()) {
    return true;
  }
  if (peek.old_tenant) return tenants_.find(*peek.old_tenant) != tenants_.end();
  if (peek.op == Op::kTruncate || (peek.op == Op::kUpdate && peek.has_old_row)) {
    return tenant_columns_.count(peek.table->QualifiedName()) > 0;
  }
  return false;
}

bool Router::Route(ChangeEvent& event) const {
  if (!Accepts(event)) return false;
  if (all_tenants_ || event.op != Op::kUpdate) return true;
  auto old_tenant = OldTenant(event);
  if (!old_tenant || *old_tenant == event.tenant) return true;
  const bool had = Serves(old_tenant);
  const bool has = Serves(event.tenant);
  if (had && has) return true;
  if (had) {
    // The row left this sink's tenants: delete it here, by the old key.
    event.op = Op::kDelete;
    event.tenant = old_tenant;
    event.old_tenant.reset();
    event.new_row.clear();
    return true;
  }
  // The row arrived from another tenant: insert it. A TOASTed value the update did not
  // change is in a full old row (REPLICA IDENTITY FULL); take it from there.
  event.op = Op::kInsert;
  event.old_tenant.reset();
  if (!event.old_is_key_only && event.old_row.size() == event.new_row.size()) {
    for (size_t i = 0; i < event.new_row.size(); ++i) {
      if (event.new_row[i].kind == ValueKind::kUnchangedToast) {
        event.new_row[i] = std::move(event.old_row[i]);
      }
    }
  }
  event.old_row.clear();
  event.old_is_key_only = false;
  return true;
}

Result<bool> Router::ApplyWhere(ChangeEvent& event) {
  if (predicates_.empty() || event.op == Op::kTruncate) return true;
  // Per table shape, not per event: the table's name is built once per shape.
  auto at = bound_.find(event.table.get());
  if (at == bound_.end()) {
    std::optional<BoundPredicate> predicate;
    if (auto found = predicates_.find(event.table->QualifiedName()); found != predicates_.end()) {
      auto bound = BoundPredicate::Bind(found->second, event.table->columns);
      if (!bound) {
        return MakeError(ErrorKind::kInvalidArgument,
                         "table " + found->first + ": where: " + bound.error().message);
      }
      predicate = std::move(bound).value();
    }
    if (bound_.size() > 256) bound_.clear();  // old shapes
    at = bound_.emplace(event.table.get(), Bound{event.table, std::move(predicate)}).first;
  }
  if (!at->second.predicate) return true;
  const BoundPredicate& where = *at->second.predicate;
  switch (event.op) {
    case Op::kInsert:
      return where.Matches(event.new_row).value_or(true);
    case Op::kDelete:
      if (event.old_row.empty()) return true;
      return where.Matches(event.old_row, event.old_is_key_only).value_or(true);
    case Op::kUpdate:
    case Op::kTruncate:
      break;
  }
  const bool full_old = !event.old_row.empty() && !event.old_is_key_only &&
                        event.old_row.size() == event.new_row.size();
  std::optional<bool> now = where.Matches(event.new_row);
  if (!now && full_old) {
    // An unsent value did not change: the old row has it.
    std::vector<Datum> row = event.new_row;
    for (size_t i = 0; i < row.size(); ++i) {
      if (row[i].kind == ValueKind::kUnchangedToast) row[i] = event.old_row[i];
    }
    now = where.Matches(row);
  }
  if (!now) return true;
  std::optional<bool> before;
  if (!event.old_row.empty()) before = where.Matches(event.old_row, event.old_is_key_only);
  if (*now) {
    bool unsent = false;
    for (const Datum& d : event.new_row) unsent = unsent || d.kind == ValueKind::kUnchangedToast;
    if (before == false || (!before && unsent)) {
      // The row enters this sink's rows: insert it, its unsent values from the old row when
      // it is full, else from the source (the runner's fetcher).
      if (full_old) {
        for (size_t i = 0; i < event.new_row.size(); ++i) {
          if (event.new_row[i].kind == ValueKind::kUnchangedToast) {
            event.new_row[i] = std::move(event.old_row[i]);
          }
        }
      }
      event.op = Op::kInsert;
      event.old_row.clear();
      event.old_is_key_only = false;
    }
    return true;
  }
  if (before == false) return false;
  // The row leaves (or may have left) this sink's rows: delete it by its old key.
  if (event.old_row.empty()) {
    event.old_row.resize(event.new_row.size());
    for (size_t i = 0; i < event.new_row.size(); ++i) {
      if (event.table->columns[i].part_of_key) event.old_row[i] = event.new_row[i];
    }
    event.old_is_key_only = true;
  }
  event.op = Op::kDelete;
  event.new_row.clear();
  return true;
}

}  // namespace pgfanout
