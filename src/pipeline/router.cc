#include "src/pipeline/router.h"

namespace pgfanout {

Router::Router(const SinkConfig& sink, const std::vector<TableConfig>& tables)
    : all_tenants_(sink.AllTenants()), tenants_(sink.tenants.begin(), sink.tenants.end()) {
  for (const auto& t : sink.tables) tables_.insert(t.source);
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

}  // namespace pgfanout
