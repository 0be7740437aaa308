#include "src/sinks/nats/nats_event.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "src/sinks/json_text.h"

namespace pgfanout::nats {
namespace {

using json_text::AppendString;
using json_text::AppendTime;
using json_text::AppendValue;
using json_text::OpName;

bool SafeSubjectByte(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

enum class Columns { kAll, kReplicaIdentity, kKey };

// {"col": value, ...} over the columns `which` selects (kKey: those in `key`, or the
// replica identity's when `key` is empty); unchanged TOAST values are left out (the caller
// lists them in unchanged_toast).
void AppendRow(const TableSchema& table, const std::vector<Datum>& row, Columns which,
               std::span<const std::string> key, std::string& out) {
  if (which == Columns::kKey && key.empty()) which = Columns::kReplicaIdentity;
  auto wanted = [&](const ColumnSchema& col) {
    switch (which) {
      case Columns::kAll:
        return true;
      case Columns::kReplicaIdentity:
        return col.part_of_key;
      case Columns::kKey:
        return std::find(key.begin(), key.end(), col.name) != key.end();
    }
    return true;
  };
  out.push_back('{');
  bool first = true;
  for (size_t i = 0; i < row.size() && i < table.columns.size(); ++i) {
    const auto& col = table.columns[i];
    if (row[i].kind == ValueKind::kUnchangedToast || !wanted(col)) continue;
    if (!first) out.push_back(',');
    first = false;
    AppendString(col.name, out);
    out.push_back(':');
    AppendValue(col, row[i], out);
  }
  out.push_back('}');
}

void AppendToken(std::string_view value, std::string& out) {
  if (value.empty()) {
    out.append("%00");
    return;
  }
  if (value == "_") {
    out.append("%5F");
    return;
  }
  for (char ch : value) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (SafeSubjectByte(c)) {
      out.push_back(ch);
    } else {
      fmt::format_to(std::back_inserter(out), "%{:02X}", c);
    }
  }
}

}  // namespace

std::string SubjectToken(std::string_view value) {
  std::string out;
  AppendToken(value, out);
  return out;
}

std::string TenantToken(const ChangeEvent& event) {
  if (event.op == Op::kTruncate) return std::string(kTruncateToken);
  return event.tenant ? SubjectToken(*event.tenant) : std::string("_");
}

void NatsEventEncoder::Encode(const ChangeEvent& event, std::string& subject, std::string& headers,
                              std::string& body) {
  subject.assign(prefix_);
  subject.push_back('.');
  if (event.op == Op::kTruncate) {
    subject.append(kTruncateToken);
  } else if (event.tenant) {
    AppendToken(*event.tenant, subject);
  } else {
    subject.push_back('_');
  }
  subject.push_back('.');
  AppendToken(event.table->schema_name, subject);
  subject.push_back('.');
  AppendToken(event.table->table_name, subject);

  headers.assign("NATS/1.0\r\nNats-Msg-Id: ");
  headers.append(event.id.ToString());
  headers.append("\r\nNats-Expected-Stream: ");
  headers.append(stream_);
  headers.append("\r\n\r\n");

  body.clear();
  std::span<const std::string> key;
  if (!keys_.empty()) {
    qualified_.assign(event.table->schema_name).append(".").append(event.table->table_name);
    if (auto k = keys_.find(qualified_); k != keys_.end()) key = k->second;
  }
  AppendBody(event, truncate_scope_, key, body);
}

void NatsEventEncoder::AppendBody(const ChangeEvent& ev,
                                  std::span<const std::string> truncate_scope,
                                  std::span<const std::string> key, std::string& out) {
  const TableSchema& t = *ev.table;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{{\"id\":\"{}\",\"lsn\":\"{}\",\"commit_time\":", ev.id.ToString(),
                 ev.id.commit_lsn.ToString());
  AppendTime(ev.commit_time_us, out);
  fmt::format_to(it, ",\"xid\":{},\"schema\":", ev.xid.value);
  AppendString(t.schema_name, out);
  out.append(",\"table\":");
  AppendString(t.table_name, out);
  fmt::format_to(it, ",\"op\":\"{}\",\"tenant\":", OpName(ev.op));
  if (ev.tenant) {
    AppendString(*ev.tenant, out);
  } else {
    out.append("null");
  }
  if (ev.op == Op::kTruncate) {
    if (!truncate_scope.empty()) {
      out.append(",\"only_tenants\":[");
      for (size_t i = 0; i < truncate_scope.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendString(truncate_scope[i], out);
      }
      out.push_back(']');
    }
    fmt::format_to(it, ",\"cascade\":{},\"restart_identity\":{}}}",
                   (ev.truncate_flags & kTruncateCascade) != 0,
                   (ev.truncate_flags & kTruncateRestartIdentity) != 0);
    return;
  }
  out.append(",\"key\":");
  AppendRow(t, ev.op == Op::kDelete ? ev.old_row : ev.new_row, Columns::kKey, key, out);
  out.append(",\"new\":");
  if (ev.new_row.empty()) {
    out.append("null");
  } else {
    AppendRow(t, ev.new_row, Columns::kAll, {}, out);
  }
  out.append(",\"old\":");
  if (ev.old_row.empty()) {
    out.append("null");
  } else {
    AppendRow(t, ev.old_row, ev.old_is_key_only ? Columns::kReplicaIdentity : Columns::kAll, {},
              out);
  }
  bool any_toast = false;
  for (size_t i = 0; i < ev.new_row.size() && i < t.columns.size(); ++i) {
    if (ev.new_row[i].kind != ValueKind::kUnchangedToast) continue;
    out.append(any_toast ? "," : ",\"unchanged_toast\":[");
    any_toast = true;
    AppendString(t.columns[i].name, out);
  }
  if (any_toast) out.push_back(']');
  out.push_back('}');
}

}  // namespace pgfanout::nats
