#include "src/pgclient/pg_connection.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "src/config/config.h"

namespace pgfanout {

Result<PgConnection> PgConnection::Connect(const std::string& dsn, Mode mode,
                                           std::string_view peer, const std::string& password) {
  // expand_dbname=1: the first "dbname" entry is parsed as a whole connection string and
  // the entries after it override what it says.
  // Defaults come before "dbname" (the DSN may override them), pinned settings after.
  std::vector<const char*> keys = {"connect_timeout", "fallback_application_name", "dbname",
                                   "options"};
  std::vector<const char*> values = {
      "10", "pgfanout", dsn.c_str(),
      "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3"};
  if (!password.empty()) {
    keys.push_back("password");
    values.push_back(password.c_str());
  }
  if (mode == Mode::kReplication) {
    keys.push_back("replication");
    values.push_back("database");
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 1);
  if (conn == nullptr) return MakeError(ErrorKind::kConnection, "libpq: out of memory");
  PgConnection c(conn);
  if (PQstatus(conn) != CONNECTION_OK) {
    return MakeError(ErrorKind::kConnection,
                     fmt::format("cannot connect to the {} ({}, {}): {}", peer,
                                 mode == Mode::kReplication ? "replication" : "sql", RedactDsn(dsn),
                                 c.LastError()));
  }
  return c;
}

PgConnection::PgConnection(PgConnection&& other) noexcept : conn_(other.conn_) {
  other.conn_ = nullptr;
}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_) PQfinish(conn_);
    conn_ = other.conn_;
    other.conn_ = nullptr;
  }
  return *this;
}

PgConnection::~PgConnection() {
  if (conn_) PQfinish(conn_);
}

std::string PgConnection::LastError() const {
  std::string msg = conn_ ? PQerrorMessage(conn_) : "no connection";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

namespace {

std::string Field(const PGresult* r, int code) {
  const char* v = r ? PQresultErrorField(r, code) : nullptr;
  return v ? v : "";
}

// Replaces the text between double quotes with "…" unless it is one of `names`: a data
// exception's message quotes the value it could not take ("invalid input syntax for type
// integer: \"alice@example.com\""), and names it quotes are the table's own.
std::string ScrubQuoted(const std::string& text, const std::vector<std::string>& names) {
  std::string out;
  size_t at = 0;
  while (true) {
    size_t open = text.find('"', at);
    if (open == std::string::npos) break;
    size_t close = text.find('"', open + 1);
    if (close == std::string::npos) break;
    const std::string inside = text.substr(open + 1, close - open - 1);
    const bool name = std::find(names.begin(), names.end(), inside) != names.end();
    out.append(text, at, open - at);
    out += name ? "\"" + inside + "\"" : std::string("\"…\"");
    at = close + 1;
  }
  out.append(text, at, std::string::npos);
  return out;
}

Result<PgResult> Check(const PgConnection& c, std::string_view what, PGresult* raw) {
  PgResult r(raw);
  auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_COPY_BOTH) {
    return r;
  }
  std::string msg = r ? ServerErrorText(r.get()) : "";
  if (msg.empty()) msg = c.LastError();
  const std::string state = Field(r.get(), PG_DIAG_SQLSTATE);
  std::string_view sqlstate = state;
  // Lost connection, server shutting down, or out of connections: worth retrying.
  bool connection = PQstatus(c.get()) != CONNECTION_OK || sqlstate.starts_with("08") ||
                    sqlstate.starts_with("57P") || sqlstate == "53300";
  auto kind = connection ? ErrorKind::kConnection : ErrorKind::kProtocol;
  if (sqlstate.empty()) return MakeError(kind, fmt::format("{}: {}", what, msg));
  return MakeError(kind, fmt::format("{}: {} (SQLSTATE {})", what, msg, sqlstate));
}

}  // namespace

Result<PgResult> PgConnection::Exec(std::string_view what, const std::string& sql,
                                    const std::vector<std::string>& params) const {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  return Check(*this, what,
               PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0));
}

Result<PgResult> PgConnection::ExecSimple(std::string_view what, const std::string& sql) const {
  return Check(*this, what, PQexec(conn_, sql.c_str()));
}

Result<void> PgConnection::BeginCopyIn(std::string_view what, const std::string& sql) const {
  PGresult* raw = PQexec(conn_, sql.c_str());
  if (raw != nullptr && PQresultStatus(raw) == PGRES_COPY_IN) {
    PQclear(raw);
    return boost::outcome_v2::success();
  }
  auto checked = Check(*this, what, raw);
  if (!checked) return checked.error();
  return MakeError(ErrorKind::kProtocol,
                   fmt::format("{}: the statement did not start a COPY", what));
}

Result<void> PgConnection::PutCopyData(std::string_view what, std::string_view data) const {
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) == 1) {
    return boost::outcome_v2::success();
  }
  auto kind = PQstatus(conn_) != CONNECTION_OK ? ErrorKind::kConnection : ErrorKind::kProtocol;
  return MakeError(kind, fmt::format("{}: {}", what, LastError()));
}

Result<void> PgConnection::EndCopyIn(std::string_view what, const char* abort_reason) const {
  if (PQputCopyEnd(conn_, abort_reason) != 1) {
    auto kind = PQstatus(conn_) != CONNECTION_OK ? ErrorKind::kConnection : ErrorKind::kProtocol;
    return MakeError(kind, fmt::format("{}: {}", what, LastError()));
  }
  // The COPY's own result, then nothing; the first failure is the one to report.
  std::optional<Error> failed;
  while (PGresult* raw = PQgetResult(conn_)) {
    auto checked = Check(*this, what, raw);
    if (!checked && !failed) failed = checked.error();
  }
  if (failed) return *failed;
  return boost::outcome_v2::success();
}

std::string ServerErrorText(const PGresult* r) {
  std::string primary = Field(r, PG_DIAG_MESSAGE_PRIMARY);
  if (primary.empty()) {
    // A client-side failure has no fields: its text is libpq's own.
    std::string msg = r ? PQresultErrorMessage(r) : "";
    primary = msg.substr(0, msg.find('\n'));
  }
  const std::string state = Field(r, PG_DIAG_SQLSTATE);
  const std::string table = Field(r, PG_DIAG_TABLE_NAME);
  const std::string column = Field(r, PG_DIAG_COLUMN_NAME);
  const std::string constraint = Field(r, PG_DIAG_CONSTRAINT_NAME);
  const std::string schema = Field(r, PG_DIAG_SCHEMA_NAME);
  const std::string type = Field(r, PG_DIAG_DATATYPE_NAME);
  // Data exceptions (22xxx) quote the value they could not take.
  if (state.starts_with("22")) {
    primary = ScrubQuoted(primary, {table, column, constraint, schema, type});
  }
  std::string names;
  auto add = [&](std::string_view label, const std::string& value) {
    if (value.empty()) return;
    names += fmt::format("{}{} {}", names.empty() ? " [" : ", ", label, value);
  };
  add("table", schema.empty() || table.empty() ? table : schema + "." + table);
  add("column", column);
  add("constraint", constraint);
  if (!names.empty()) names += "]";
  // DETAIL ("Failing row contains (…)", "Key (email)=(…) already exists") and CONTEXT (a
  // COPY line) may hold a row's values: the debug log only, never an error's text.
  const std::string detail = Field(r, PG_DIAG_MESSAGE_DETAIL);
  const std::string context = Field(r, PG_DIAG_CONTEXT);
  if (!detail.empty() || !context.empty()) {
    spdlog::debug("server error \"{}\": detail: {}; context: {}", primary, detail, context);
  }
  return primary + names;
}

std::string SqlStateOf(const Error& error) {
  // Check() ends every server error with " (SQLSTATE xxxxx)".
  constexpr std::string_view kTag = "(SQLSTATE ";
  const std::string& m = error.message;
  if (m.size() < kTag.size() + 6 || m.back() != ')') return "";
  size_t at = m.size() - kTag.size() - 6;
  if (m.compare(at, kTag.size(), kTag) != 0) return "";
  return m.substr(at + kTag.size(), 5);
}

std::string PgConnection::QuoteIdent(std::string_view ident) const {
  char* q = PQescapeIdentifier(conn_, ident.data(), ident.size());
  std::string out = q ? q : "";
  PQfreemem(q);
  return out;
}

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string QuoteLiteral(std::string_view text) {
  std::string out = "E'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out.push_back(c);
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string TenantTextMatch(const std::string& column, const std::vector<std::string>& tenants,
                            bool indexable) {
  std::string list;
  for (size_t i = 0; i < tenants.size(); ++i) list += (i ? ", " : "") + QuoteLiteral(tenants[i]);
  std::string text = fmt::format("format('%s', {}) COLLATE \"C\" IN ({})", column, list);
  if (!indexable) return text;
  return fmt::format("{} IN ({}) AND {}", column, list, text);
}

std::optional<std::string> GetValue(const PgResult& r, int row, int col) {
  if (PQgetisnull(r.get(), row, col)) return std::nullopt;
  return std::string(PQgetvalue(r.get(), row, col), PQgetlength(r.get(), row, col));
}

}  // namespace pgfanout
