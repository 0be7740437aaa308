#include "src/sinks/jsonl/jsonl_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "src/core/failpoint.h"

namespace pgfanout {
namespace {

// Type OIDs from pg_type.dat whose text form maps to a JSON kind other than string.
constexpr uint32_t kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
                   kJsonOid = 114, kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700,
                   kJsonbOid = 3802;

Error IoError(const std::string& what, const std::string& path) {
  return MakeError(ErrorKind::kSink, fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

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
void AppendRow(const TableSchema& table, const std::vector<Datum>& row, Pred want,
               fmt::memory_buffer& out) {
  out.push_back('{');
  bool first = true;
  for (size_t i = 0; i < row.size(); ++i) {
    const auto& col = table.columns[i];
    if (row[i].kind == ValueKind::kUnchangedToast || !want(col, row[i])) continue;
    if (!first) out.push_back(',');
    first = false;
    AppendString(col.name, out);
    out.push_back(':');
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

JsonlSink::~JsonlSink() { Stop(); }

void JsonlSink::FormatEvent(const ChangeEvent& ev, fmt::memory_buffer& out,
                            std::span<const std::string> truncate_scope) {
  const TableSchema& t = *ev.table;
  auto it = std::back_inserter(out);
  out.append(std::string_view("{\"id\":\""));
  fmt::format_to(it, "{}\",\"lsn\":\"{}\",\"commit_time\":", ev.id.ToString(),
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
    if (!truncate_scope.empty()) {
      // A per-tenant sink's truncate removes only these tenants' rows.
      out.append(std::string_view(",\"only_tenants\":["));
      for (size_t i = 0; i < truncate_scope.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendString(truncate_scope[i], out);
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
  AppendRow(t, ev.op == Op::kDelete ? ev.old_row : ev.new_row, key_only, out);
  out.append(std::string_view(",\"new\":"));
  if (ev.new_row.empty()) {
    out.append(std::string_view("null"));
  } else {
    AppendRow(t, ev.new_row, all, out);
  }
  out.append(std::string_view(",\"old\":"));
  if (ev.old_row.empty()) {
    out.append(std::string_view("null"));
  } else if (ev.old_is_key_only) {
    AppendRow(t, ev.old_row, key_only, out);
  } else {
    AppendRow(t, ev.old_row, all, out);
  }
  bool any_toast = false;
  for (size_t i = 0; i < ev.new_row.size(); ++i) {
    if (ev.new_row[i].kind != ValueKind::kUnchangedToast) continue;
    out.append(std::string_view(any_toast ? "," : ",\"unchanged_toast\":["));
    any_toast = true;
    AppendString(t.columns[i].name, out);
  }
  if (any_toast) out.push_back(']');
  out.append(std::string_view("}\n"));
}

Result<std::optional<SinkCursor>> JsonlSink::Open(const std::optional<SinkCursor>& stored) {
  Stop();
  std::error_code dir_error;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, dir_error);
  if (dir_error) {
    return MakeError(ErrorKind::kSink,
                     fmt::format("cannot create directory {} for the JSONL sink: {}",
                                 parent.string(), dir_error.message()));
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return IoError("cannot open JSONL sink file", path_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return IoError("cannot stat", path_);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (!stored || stored->token.empty()) {
    // A new sink: keep what the file holds and append after it. An empty token means the
    // same: the cursor moved past events this sink's filter skipped before its first write.
    offset_ = size;
    return stored;
  }
  uint64_t covered = 0;
  const auto& token = stored->token;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), covered);
  if (ec != std::errc() || end != token.data() + token.size()) {
    // Retrying cannot mend a corrupt cursor: stop this sink and say so.
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("JSONL sink cursor token '{}' is not a file length", token));
  }
  if (size < covered) {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("{} holds {} bytes but its cursor ({}) covers {}: the file was "
                                 "truncated or replaced outside pgfanout; restore it, or move it "
                                 "away and run `pgfanout replay` for this sink",
                                 path_, size, stored->applied.ToString(), covered));
  }
  // Lines past the cursor were written but never acknowledged: drop them, they come again.
  if (size > covered && (::ftruncate(fd_, static_cast<off_t>(covered)) != 0 || ::fsync(fd_) != 0)) {
    return IoError("cannot truncate", path_);
  }
  offset_ = covered;
  return stored;
}

Result<std::string> JsonlSink::Write(std::span<const ChangeEvent> events) {
  if (fd_ < 0) return MakeError(ErrorKind::kSink, "JSONL sink written before Open");
  buffer_.clear();
  size_t half = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    FormatEvent(events[i], buffer_, truncate_scope_);
    if (i == events.size() / 2) half = buffer_.size();
  }
  auto write_all = [&](size_t from, size_t to) -> Result<void> {
    while (from < to) {
      ssize_t n =
          ::pwrite(fd_, buffer_.data() + from, to - from, static_cast<off_t>(offset_ + from));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("cannot write", path_);
      }
      from += static_cast<size_t>(n);
    }
    return boost::outcome_v2::success();
  };
  PGF_TRY(write_all(0, half));
  PGF_TRY(FailpointHit("sink.mid_write"));
  PGF_TRY(write_all(half, buffer_.size()));
  if (::fdatasync(fd_) != 0) return IoError("cannot fsync", path_);
  offset_ += buffer_.size();
  PGF_TRY(FailpointHit("sink.after_write"));
  return std::to_string(offset_);
}

void JsonlSink::Stop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace pgfanout
