#include "src/pipeline/sink_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pgfanout {
namespace {

// Sets `row.tenants` from a text[] literal; false (row.error set) when it does not parse.
bool SetTenants(meta::Registry::Row& row, std::string_view literal) {
  auto tenants = ParseTextArray(literal);
  if (!tenants) {
    row.error = "tenants: expected a text array without NULLs";
    return false;
  }
  row.tenants = std::move(*tenants);
  return true;
}

// Sets `row.params` from a jsonb text: an object of strings, numbers and booleans.
bool SetParams(meta::Registry::Row& row, const std::string& text) {
  row.params.clear();
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    row.error = "params: expected a JSON object";
    return false;
  }
  for (const auto& [key, value] : doc.items()) {
    std::string v;
    if (value.is_string()) {
      v = value.get<std::string>();
    } else if (value.is_number() || value.is_boolean()) {
      v = value.dump();
    } else {
      // The key is the product's text too: it is named only once it passed the check
      // InstantiateTemplate makes of every key.
      row.error = "params: values are strings, numbers or booleans";
      return false;
    }
    row.params.emplace_back(key, std::move(v));
  }
  std::sort(row.params.begin(), row.params.end());
  return true;
}

int ColumnIndex(const TableSchema& table, std::string_view name) {
  for (size_t i = 0; i < table.columns.size(); ++i) {
    if (table.columns[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

// The text of column `name` in `values`; nullopt when the column or its value is missing
// (NULL, or an unchanged TOASTed value the server did not send).
const Datum* ValueOf(const TableSchema& table, const std::vector<Datum>& values,
                     std::string_view name) {
  const int i = ColumnIndex(table, name);
  if (i < 0 || static_cast<size_t>(i) >= values.size()) return nullptr;
  return &values[static_cast<size_t>(i)];
}

std::optional<std::vector<std::string>> ParseTextArray(std::string_view s) {
  // Postgres array output: {a,b,"c d","e\"f"}; NULL unquoted is a NULL element.
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return std::nullopt;
  std::vector<std::string> out;
  size_t i = 1;
  const size_t end = s.size() - 1;
  if (i == end) return out;
  while (i <= end) {
    std::string item;
    bool quoted = false;
    if (i < end && s[i] == '"') {
      quoted = true;
      ++i;
      while (i < end && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < end) ++i;
        item += s[i++];
      }
      if (i >= end) return std::nullopt;  // unterminated
      ++i;                                // closing quote
    } else {
      while (i < end && s[i] != ',') {
        if (s[i] == '{' || s[i] == '"') return std::nullopt;  // nested or stray quote
        item += s[i++];
      }
    }
    if (!quoted && item == "NULL") return std::nullopt;
    out.push_back(std::move(item));
    if (i == end) break;
    if (s[i] != ',') return std::nullopt;
    ++i;
    if (i == end) return std::nullopt;  // trailing comma
  }
  return out;
}

meta::Registry::Row DecodeRegistryRow(std::string sink_id, std::string template_name,
                                      std::string_view tenants, const std::string& params,
                                      bool enabled) {
  meta::Registry::Row row{
      .sink_id = std::move(sink_id), .template_name = std::move(template_name), .enabled = enabled};
  if (SetTenants(row, tenants)) SetParams(row, params);
  return row;
}

Result<bool> SinkRegistry::Load(const EventLog& log) {
  PGF_TRY(auto stored, meta::Load(log, meta::RegistryKey()));
  if (!stored) return false;
  state_ = std::move(*stored);
  return true;
}

void SinkRegistry::Seed(std::vector<Row> rows, EventId applied) {
  std::sort(rows.begin(), rows.end(),
            [](const Row& a, const Row& b) { return a.sink_id < b.sink_id; });
  state_ = meta::Registry{.applied = applied, .rows = std::move(rows)};
}

Result<void> SinkRegistry::Store(EventLog& log) const {
  return meta::Store(log, meta::RegistryKey(), state_);
}

std::vector<ChangeEvent> SinkRegistry::Extract(std::vector<TransactionRecord>& txs) const {
  return own_.Take(txs, state_.applied);
}

const SinkRegistry::Row* SinkRegistry::Find(const std::string& sink_id) const {
  auto it = std::lower_bound(state_.rows.begin(), state_.rows.end(), sink_id,
                             [](const Row& r, const std::string& id) { return r.sink_id < id; });
  return it != state_.rows.end() && it->sink_id == sink_id ? &*it : nullptr;
}

void SinkRegistry::SetRowError(const std::string& sink_id, std::string error) {
  if (auto* row = const_cast<Row*>(Find(sink_id))) row->error = std::move(error);
}

SinkRegistry::Delta SinkRegistry::Apply(const std::vector<ChangeEvent>& events) {
  Delta delta;
  auto& rows = state_.rows;
  const ChangeEvent* current = nullptr;
  auto touched = [&](const std::string& id) {
    if (std::find(delta.changed.begin(), delta.changed.end(), id) == delta.changed.end()) {
      delta.changed.push_back(id);
      delta.first[id] = current->id;
    }
  };
  auto erase = [&](const std::string& id) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.sink_id == id; });
    if (it == rows.end()) return;
    rows.erase(it);
    delta.deleted.insert(id);
    touched(id);
  };
  for (const auto& ev : events) {
    current = &ev;
    state_.applied = std::max(state_.applied, ev.id);
    const TableSchema& table = *ev.table;
    if (ev.op == Op::kTruncate) {
      while (!rows.empty()) erase(rows.front().sink_id);
      continue;
    }
    auto text = [&](const std::vector<Datum>& values, std::string_view column) {
      const Datum* d = ValueOf(table, values, column);
      return d && d->kind == ValueKind::kText ? std::optional<std::string>(d->text) : std::nullopt;
    };
    // The old key: a delete's, or an update's that changed the sink_id.
    std::optional<std::string> old_id = text(ev.old_row, "sink_id");
    if (ev.op == Op::kDelete) {
      if (old_id) erase(*old_id);
      continue;
    }
    std::optional<std::string> id = text(ev.new_row, "sink_id");
    if (!id) continue;  // the primary key is never NULL; a table without it is refused at start
    if (ev.op == Op::kUpdate && old_id && *old_id != *id) erase(*old_id);
    const Row* before = Find(*id);
    Row row{.sink_id = *id};
    row.template_name = text(ev.new_row, "template").value_or("");
    const Datum* enabled = ValueOf(table, ev.new_row, "enabled");
    row.enabled = !enabled || enabled->kind != ValueKind::kText || enabled->text == "t";
    // A TOASTed value an UPDATE left alone is not sent: it is the row's as it was.
    auto column = [&](std::string_view name, auto&& set, auto&& keep) {
      const Datum* d = ValueOf(table, ev.new_row, name);
      if (d && d->kind == ValueKind::kUnchangedToast && before) {
        keep(*before);
        return true;
      }
      if (!d || d->kind != ValueKind::kText) {
        row.error = fmt::format("{}: missing or NULL", name);
        return false;
      }
      return set(d->text);
    };
    column(
        "tenants", [&](const std::string& t) { return SetTenants(row, t); },
        [&](const Row& b) { row.tenants = b.tenants; }) &&
        column(
            "params", [&](const std::string& t) { return SetParams(row, t); },
            [&](const Row& b) { row.params = b.params; });
    auto it = std::lower_bound(rows.begin(), rows.end(), *id,
                               [](const Row& r, const std::string& k) { return r.sink_id < k; });
    if (it != rows.end() && it->sink_id == *id) {
      *it = std::move(row);
    } else {
      rows.insert(it, std::move(row));
    }
    touched(*id);
  }
  return delta;
}

RegistryRow SinkRegistry::ToRegistryRow(const Row& row) {
  return RegistryRow{.sink_id = row.sink_id,
                     .template_name = row.template_name,
                     .tenants = row.tenants,
                     .params = {row.params.begin(), row.params.end()},
                     .enabled = row.enabled};
}

SinkRegistry::Resolved SinkRegistry::Resolve(const Config& config) const {
  if (made_with_templates_ != config.sink_templates || made_with_sinks_ != config.sinks) {
    made_.clear();
    made_with_templates_ = config.sink_templates;
    made_with_sinks_ = config.sinks;
  }
  Resolved out;
  std::map<std::string, Made> made;
  for (const auto& row : state_.rows) {
    if (!row.error.empty()) {
      out.errors[row.sink_id] = fmt::format("registry: sink {}: {}", row.sink_id, row.error);
      continue;
    }
    auto it = made_.find(row.sink_id);
    if (it == made_.end() || !(it->second.row == row)) {
      it = made_
               .insert_or_assign(row.sink_id,
                                 Made{row, InstantiateTemplate(config, ToRegistryRow(row))})
               .first;
    }
    const Result<SinkConfig>& sink = it->second.sink;
    if (!sink) {
      out.errors[row.sink_id] = "registry: " + sink.error().message;
    } else {
      out.sinks.push_back(sink.value());
    }
    made.insert(made_.extract(it));
  }
  made_ = std::move(made);  // rows deleted since are forgotten
  return out;
}

}  // namespace pgfanout
