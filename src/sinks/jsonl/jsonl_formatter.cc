#include "src/sinks/jsonl/jsonl_formatter.h"

#include <ctime>

namespace pgfanout {
namespace {

// Type OIDs from pg_type.dat whose text form maps to a JSON kind other than string.
constexpr uint32_t kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
                   kJsonOid = 114, kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700,
                   kJsonbOid = 3802;

// JSON string escaping (RFC 8259). Hand-written because it runs once per value on the
// hot path, where building a DOM per event would cost more than the rest of the sink.
void AppendString(std::string_view s, fmt::memory_buffer& out) {
  out.push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, s.data() + i);
    run = i + 1;
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    }
  }
  out.append(s.data() + run, s.data() + s.size());
  out.push_back('"');
}

bool IsJsonNumber(std::string_view s) {
  // Postgres prints NaN and Infinity for float and numeric; JSON has no such numbers.
  return !s.empty() && s != "NaN" && s != "Infinity" && s != "-Infinity";
}

void AppendValue(const ColumnSchema& col, const Datum& d, fmt::memory_buffer& out) {
  if (d.kind == ValueKind::kNull) {
    out.append(std::string_view("null"));
    return;
  }
  switch (col.type_oid) {
    case kBoolOid:
      out.append(std::string_view(d.text == "t" ? "true" : "false"));
      return;
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid:
      if (IsJsonNumber(d.text)) {
        out.append(d.text);
        return;
      }
      break;
    case kJsonOid:
    case kJsonbOid:
      out.append(d.text);  // already JSON
      return;
  }
  AppendString(d.text, out);
}

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

void AppendTime(int64_t unix_us, fmt::memory_buffer& out) {
  std::time_t secs = static_cast<std::time_t>(unix_us / 1'000'000);
  int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 micros);
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kInsert:
      return "insert";
    case Op::kUpdate:
      return "update";
    case Op::kDelete:
      return "delete";
    case Op::kTruncate:
      return "truncate";
  }
  return "?";
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
