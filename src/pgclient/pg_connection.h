#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/error.h"

namespace pgfanout {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// An owned libpq connection with the few helpers setup code needs. Blocking: used for
// start-up and setup only, never on the streaming path.
class PgConnection {
 public:
  enum class Mode { kNormal, kReplication };

  // Connects with `dsn` (key=value or URI). In kReplication mode adds replication=database.
  // Both pin datestyle=ISO, intervalstyle=postgres and extra_float_digits=3 so text values
  // have one form whatever the server's defaults. Errors (kConnection) never echo the DSN
  // unredacted; `peer` names the server in them ("source", "target of sink x").
  // `password` (from a password_file), when not empty, goes to libpq beside the DSN, never
  // into it, so no message that shows the DSN can show it.
  static Result<PgConnection> Connect(const std::string& dsn, Mode mode,
                                      std::string_view peer = "source",
                                      const std::string& password = "");

  PgConnection(PgConnection&&) noexcept;
  PgConnection& operator=(PgConnection&&) noexcept;
  ~PgConnection();

  PGconn* get() const { return conn_; }

  // Runs one statement with text parameters ($1, $2 …); the result must be TUPLES_OK or
  // COMMAND_OK. `what` names the step in the error message, which ends with the SQLSTATE.
  // Errors: kConnection when the connection is lost or the server is shutting down or out
  // of connections (08xxx, 57Pxx, 53300), kProtocol for any other server error.
  Result<PgResult> Exec(std::string_view what, const std::string& sql,
                        const std::vector<std::string>& params = {}) const;
  // Simple-query protocol, needed for replication commands.
  Result<PgResult> ExecSimple(std::string_view what, const std::string& sql) const;

  // COPY … FROM STDIN, in three steps: BeginCopyIn runs `sql` (a COPY FROM STDIN
  // statement), PutCopyData sends bytes (any split; libpq buffers them), EndCopyIn finishes
  // and returns the command's outcome. EndCopyIn with `abort_reason` cancels the COPY (the
  // server rolls it back); call it after a failed PutCopyData too. Errors as Exec.
  Result<void> BeginCopyIn(std::string_view what, const std::string& sql) const;
  Result<void> PutCopyData(std::string_view what, std::string_view data) const;
  Result<void> EndCopyIn(std::string_view what, const char* abort_reason = nullptr) const;

  std::string QuoteIdent(std::string_view ident) const;
  std::string LastError() const;

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_ = nullptr;
};

// The text of a server error without row data: the primary message (for a data exception,
// 22xxx, with the quoted value it could not take replaced by "…"), then the table, column
// and constraint it names. DETAIL and CONTEXT, which can hold a failing row or a COPY line,
// go to the debug log only. Every error of this class is built with it.
std::string ServerErrorText(const PGresult* result);

// The SQLSTATE an Exec/ExecSimple/COPY error ends with ("23505"), or "" when it has none
// (a client-side failure such as a lost connection).
std::string SqlStateOf(const Error& error);

// SQL text built by hand: an identifier always in double quotes, and a string literal in
// E'' form, which reads the same whatever standard_conforming_strings says.
std::string QuoteIdent(std::string_view name);
std::string QuoteLiteral(std::string_view text);

// Tenant values are compared as text, byte for byte, in the form the source writes its
// tenant column (the type's output text, as pgoutput sends it; source_setup.h refuses a
// configured value written otherwise). `column` is a column reference:
//   format('%s', col) COLLATE "C" IN ('7', '8')
// With `indexable`, `col IN ('7', '8') AND …` comes first: equal values are a superset of
// equal texts, and an index on the column can serve it.
std::string TenantTextMatch(const std::string& column, const std::vector<std::string>& tenants,
                            bool indexable = false);

// Value of row `row`, column `col` or nullopt for SQL NULL.
std::optional<std::string> GetValue(const PgResult& r, int row, int col);

}  // namespace pgfanout
