#include "src/sinks/jsonl/jsonl_formatter.h"

#include "src/sinks/json_text.h"

namespace pgfanout {
namespace {

using json_text::AppendString;
using json_text::AppendTime;
using json_text::AppendValue;
using json_text::OpName;

// {"col": value, ...} over the columns `want` selects; unchanged TOAST values are left out
// (listed separately by the caller).
template <class Pred>
void AppendRow(const TableSchema& table, const std::vector<std::string>& keys,
               const std::vector<Datum>& row, Pred want, fmt::memory_buffer& out) {
  out.push_back('{');
  bool first = true;
  for (size_t i = 0; i < row.size(); ++i) {
    const auto& col = table.columns[i];
    if (row[i].kind == ValueKind::kUnchangedToast || !want(col, row[i])) continue;
    if (!first) out.push_back(',');
    first = false;
    out.append(keys[i]);  // "name":
    AppendValue(col, row[i], out);
  }
  out.push_back('}');
}

}  // namespace

void JsonlFormatter::Learn(const TableSchema& t) {
  schema_ = &t;
  fmt::memory_buffer b;
  b.append(std::string_view("\"schema\":"));
  AppendString(t.schema_name, b);
  b.append(std::string_view(",\"table\":"));
  AppendString(t.table_name, b);
  schema_fragment_.assign(b.data(), b.size());
  column_keys_.clear();
  for (const auto& c : t.columns) {
    b.clear();
    AppendString(c.name, b);
    b.push_back(':');
    column_keys_.emplace_back(b.data(), b.size());
  }
}

void JsonlFormatter::AppendName(std::string_view name, fmt::memory_buffer& out) {
  AppendString(name, out);
}

void JsonlFormatter::Format(const ChangeEvent& ev, fmt::memory_buffer& out,
                            std::span<const std::string> truncate_scope) {
  const TableSchema& t = *ev.table;
  auto it = std::back_inserter(out);
  // Everything before the ordinal and after it up to the op is the same for all events of
  // a transaction and table: built once, appended as is.
  if (ev.id.commit_lsn != tx_lsn_ || ev.commit_time_us != tx_time_ || ev.xid.value != tx_xid_) {
    tx_lsn_ = ev.id.commit_lsn;
    tx_time_ = ev.commit_time_us;
    tx_xid_ = ev.xid.value;
    lsn_text_ = ev.id.commit_lsn.ToString();
    fmt::memory_buffer tail;
    fmt::format_to(std::back_inserter(tail), "\",\"lsn\":\"{}\",\"commit_time\":", lsn_text_);
    AppendTime(ev.commit_time_us, tail);
    fmt::format_to(std::back_inserter(tail), ",\"xid\":{},", ev.xid.value);
    tx_tail_.assign(tail.data(), tail.size());
  }
  if (&t != schema_) Learn(t);
  out.append(std::string_view("{\"id\":\""));
  out.append(lsn_text_);
  out.push_back('#');
  const fmt::format_int ordinal(ev.id.ordinal);
  out.append(ordinal.data(), ordinal.data() + ordinal.size());
  out.append(tx_tail_);
  out.append(schema_fragment_);
  out.append(std::string_view(",\"op\":\""));
  out.append(std::string_view(OpName(ev.op)));
  out.append(std::string_view("\",\"tenant\":"));
  if (ev.tenant) {
    AppendName(*ev.tenant, out);
  } else {
    out.append(std::string_view("null"));
  }
  if (ev.op == Op::kTruncate) {
    if (!truncate_scope.empty()) {
      // A per-tenant sink's truncate removes only these tenants' rows.
      out.append(std::string_view(",\"only_tenants\":["));
      for (size_t i = 0; i < truncate_scope.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendName(truncate_scope[i], out);
      }
      out.push_back(']');
    }
    fmt::format_to(it, ",\"cascade\":{},\"restart_identity\":{}}}\n",
                   (ev.truncate_flags & kTruncateCascade) != 0,
                   (ev.truncate_flags & kTruncateRestartIdentity) != 0);
    return;
  }
  auto key_only = [](const ColumnSchema& c, const Datum&) { return c.part_of_key; };
  auto all = [](const ColumnSchema&, const Datum&) { return true; };
  out.append(std::string_view(",\"key\":"));
  AppendRow(t, column_keys_, ev.op == Op::kDelete ? ev.old_row : ev.new_row, key_only, out);
  out.append(std::string_view(",\"new\":"));
  if (ev.new_row.empty()) {
    out.append(std::string_view("null"));
  } else {
    AppendRow(t, column_keys_, ev.new_row, all, out);
  }
  out.append(std::string_view(",\"old\":"));
  if (ev.old_row.empty()) {
    out.append(std::string_view("null"));
  } else if (ev.old_is_key_only) {
    AppendRow(t, column_keys_, ev.old_row, key_only, out);
  } else {
    AppendRow(t, column_keys_, ev.old_row, all, out);
  }
  bool any_toast = false;
  for (size_t i = 0; i < ev.new_row.size(); ++i) {
    if (ev.new_row[i].kind != ValueKind::kUnchangedToast) continue;
    out.append(std::string_view(any_toast ? "," : ",\"unchanged_toast\":["));
    any_toast = true;
    AppendName(t.columns[i].name, out);
  }
  if (any_toast) out.push_back(']');
  out.append(std::string_view("}\n"));
}

}  // namespace pgfanout
