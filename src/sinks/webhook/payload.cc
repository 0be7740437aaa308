#include "src/sinks/webhook/payload.h"

#include <iterator>

#include "src/sinks/json_text.h"

namespace pgfanout::webhook {
namespace {

// The version in Debezium's source block: this connector's own.
constexpr std::string_view kConnectorVersion = "pgfanout-0.1";

using json_text::AppendString;
using json_text::AppendTime;
using json_text::AppendValue;
using json_text::OpName;

// {"col": value, …} over `row`'s columns for which `want(column)` holds. Unchanged TOAST
// values are written as `toast_placeholder` when it is non-empty, else left out.
template <class Want>
void AppendRow(const TableSchema& table, const std::vector<Datum>& row, Want want,
               std::string_view toast_placeholder, fmt::memory_buffer& out) {
  out.push_back('{');
  bool first = true;
  for (size_t i = 0; i < row.size() && i < table.columns.size(); ++i) {
    const ColumnSchema& col = table.columns[i];
    const bool toast = row[i].kind == ValueKind::kUnchangedToast;
    if ((toast && toast_placeholder.empty()) || !want(col)) continue;
    if (!first) out.push_back(',');
    first = false;
    AppendString(col.name, out);
    out.push_back(':');
    if (toast) {
      AppendString(toast_placeholder, out);
    } else {
      AppendValue(col, row[i], out);
    }
  }
  out.push_back('}');
}

const char* DebeziumOp(Op op) {
  switch (op) {
    case Op::kInsert:
      return "c";
    case Op::kUpdate:
      return "u";
    case Op::kDelete:
      return "d";
    case Op::kTruncate:
      return "t";
  }
  return "?";
}

bool KeyColumn(const ColumnSchema& c) { return c.part_of_key; }
bool AnyColumn(const ColumnSchema&) { return true; }

}  // namespace

void PayloadFormatter::AppendScope(fmt::memory_buffer& out) const {
  out.append(std::string_view(",\"only_tenants\":["));
  for (size_t i = 0; i < options_.truncate_scope.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendString(options_.truncate_scope[i], out);
  }
  out.push_back(']');
}

void PayloadFormatter::AppendEvent(const ChangeEvent& event, int64_t processed_ms,
                                   fmt::memory_buffer& out) const {
  if (options_.envelope == Envelope::kDebezium) {
    AppendDebeziumEvent(event, processed_ms, out);
  } else {
    AppendPgfanoutEvent(event, out);
  }
  out.push_back(',');
}

// The JSONL sink's line format (src/sinks/README.md), one object per event.
void PayloadFormatter::AppendPgfanoutEvent(const ChangeEvent& ev, fmt::memory_buffer& out) const {
  const TableSchema& t = *ev.table;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{{\"id\":\"{}\",\"lsn\":\"{}\",\"commit_time\":", ev.id.ToString(),
                 ev.id.commit_lsn.ToString());
  AppendTime(ev.commit_time_us, out);
  fmt::format_to(it, ",\"xid\":{},\"schema\":", ev.xid.value);
  AppendString(t.schema_name, out);
  out.append(std::string_view(",\"table\":"));
  AppendString(t.table_name, out);
  fmt::format_to(it, ",\"op\":\"{}\",\"tenant\":", OpName(ev.op));
  if (ev.tenant) {
    AppendString(*ev.tenant, out);
  } else {
    out.append(std::string_view("null"));
  }
  if (ev.op == Op::kTruncate) {
    if (!options_.truncate_scope.empty()) AppendScope(out);
    fmt::format_to(it, ",\"cascade\":{},\"restart_identity\":{}}}",
                   (ev.truncate_flags & kTruncateCascade) != 0,
                   (ev.truncate_flags & kTruncateRestartIdentity) != 0);
    return;
  }
  out.append(std::string_view(",\"key\":"));
  AppendRow(t, ev.op == Op::kDelete ? ev.old_row : ev.new_row, KeyColumn, {}, out);
  out.append(std::string_view(",\"new\":"));
  if (ev.new_row.empty()) {
    out.append(std::string_view("null"));
  } else {
    AppendRow(t, ev.new_row, AnyColumn, {}, out);
  }
  out.append(std::string_view(",\"old\":"));
  if (ev.old_row.empty()) {
    out.append(std::string_view("null"));
  } else if (ev.old_is_key_only) {
    AppendRow(t, ev.old_row, KeyColumn, {}, out);
  } else {
    AppendRow(t, ev.old_row, AnyColumn, {}, out);
  }
  bool any_toast = false;
  for (size_t i = 0; i < ev.new_row.size() && i < t.columns.size(); ++i) {
    if (ev.new_row[i].kind != ValueKind::kUnchangedToast) continue;
    out.append(std::string_view(any_toast ? "," : ",\"unchanged_toast\":["));
    any_toast = true;
    AppendString(t.columns[i].name, out);
  }
  if (any_toast) out.push_back(']');
  out.push_back('}');
}

// Debezium's change event value (as its JSON converter writes it with schemas.enable=false).
void PayloadFormatter::AppendDebeziumEvent(const ChangeEvent& ev, int64_t processed_ms,
                                           fmt::memory_buffer& out) const {
  const TableSchema& t = *ev.table;
  auto it = std::back_inserter(out);
  out.append(std::string_view("{\"before\":"));
  if (ev.old_row.empty()) {
    out.append(std::string_view("null"));
  } else {
    // A key-only old row ('K') has NULL in its other columns: Debezium's before for a
    // delete under the default replica identity looks the same.
    AppendRow(t, ev.old_row, AnyColumn, kDebeziumUnavailable, out);
  }
  out.append(std::string_view(",\"after\":"));
  if (ev.new_row.empty()) {
    out.append(std::string_view("null"));
  } else {
    AppendRow(t, ev.new_row, AnyColumn, kDebeziumUnavailable, out);
  }
  const int64_t commit_ms = ev.commit_time_us / 1000;
  out.append(std::string_view(",\"source\":{\"version\":"));
  AppendString(kConnectorVersion, out);
  out.append(std::string_view(",\"connector\":\"pgfanout\",\"name\":"));
  AppendString(options_.sink_id, out);
  fmt::format_to(
      it,
      ",\"ts_ms\":{},\"snapshot\":\"false\",\"db\":null,\"sequence\":null,\"schema\":", commit_ms);
  AppendString(t.schema_name, out);
  out.append(std::string_view(",\"table\":"));
  AppendString(t.table_name, out);
  fmt::format_to(it, ",\"txId\":{},\"lsn\":{},\"xmin\":null,\"event_id\":\"{}\"", ev.xid.value,
                 ev.id.commit_lsn.value(), ev.id.ToString());
  if (ev.op == Op::kTruncate && !options_.truncate_scope.empty()) AppendScope(out);
  fmt::format_to(it, "}},\"op\":\"{}\",\"ts_ms\":{},\"transaction\":null}}", DebeziumOp(ev.op),
                 processed_ms);
}

void PayloadFormatter::AppendBody(std::string_view batch_id, std::span<const ChangeEvent> events,
                                  std::string_view pieces, fmt::memory_buffer& out) const {
  // Every piece ends with ','; the last one's is dropped.
  if (!pieces.empty()) pieces.remove_suffix(1);
  if (options_.envelope == Envelope::kDebezium) {
    if (options_.bare_single && events.size() == 1) {
      out.append(pieces);
      return;
    }
    out.push_back('[');
    out.append(pieces);
    out.push_back(']');
    return;
  }
  out.append(std::string_view("{\"type\":\"pgfanout.changes\",\"timestamp\":"));
  AppendTime(events.back().commit_time_us, out);
  out.append(std::string_view(",\"data\":{\"sink\":"));
  AppendString(options_.sink_id, out);
  out.append(std::string_view(",\"batch\":"));
  AppendString(batch_id, out);
  fmt::format_to(std::back_inserter(out), ",\"count\":{},\"events\":[", events.size());
  out.append(pieces);
  out.append(std::string_view("]}}"));
}

}  // namespace pgfanout::webhook
