#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/change_event.h"

namespace pgfanout::nats {

// The token of a subject for one value (a tenant, a schema or table name): the value's
// bytes, each byte outside [A-Za-z0-9_-] written as %XX (upper-case hex), so the token
// never holds '.', '*', '>', whitespace, '%' or non-ASCII, and two values never share a
// token. Two values that would give a token with another meaning are escaped too: "_"
// (the token of "no tenant") is "%5F", and the empty value is "%00" (Postgres text never
// holds a NUL byte, so it is no other value's token).
std::string SubjectToken(std::string_view value);

// The tenant token of every TRUNCATE: reserved, no value's token (SubjectToken writes '%'
// only as "%" and two upper-case hex digits, and 't' is none), so a consumer reading
// `<prefix>.%truncate.>` for truncates gets no row of any tenant.
inline constexpr std::string_view kTruncateToken = "%truncate";

// The token of an event's tenant: kTruncateToken for a TRUNCATE, SubjectToken(tenant), or
// "_" when it has none (a table without a tenant column, a NULL tenant).
std::string TenantToken(const ChangeEvent& event);

// Builds what the NATS sink publishes for an event (README.md, "Messages"):
// - subject `<prefix>.<tenant>.<schema>.<table>`, tokens from SubjectToken/TenantToken;
// - headers `Nats-Msg-Id: <EventId>` (JetStream deduplicates re-publishes by it) and
//   `Nats-Expected-Stream: <stream>` (a message another stream would catch is refused);
// - body: one JSON object, the JSONL sink's line without its newline (id, lsn,
//   commit_time, xid, schema, table, op, tenant, key, new, old, unchanged_toast; truncates
//   carry only_tenants, cascade and restart_identity instead of rows). Unlike the JSONL
//   line, `key` holds the table's key columns (tables[].key, else the primary key) when
//   they are known, not the replica identity's: under REPLICA IDENTITY FULL that is every
//   column.
//
// Not thread-safe (reuses buffers); one per sink.
class NatsEventEncoder {
 public:
  // `keys`: key columns per qualified table ("public.users"); a table not in it keys by
  // its replica identity. `truncate_scope`: the tenants of a per-tenant sink (empty for
  // "*"), named by its truncate messages, as the truncate applies to their rows only.
  NatsEventEncoder(std::string subject_prefix, std::string stream,
                   std::map<std::string, std::vector<std::string>, std::less<>> keys = {},
                   std::vector<std::string> truncate_scope = {})
      : prefix_(std::move(subject_prefix)),
        stream_(std::move(stream)),
        keys_(std::move(keys)),
        truncate_scope_(std::move(truncate_scope)) {}

  // Replaces `subject`, `headers` (a complete NATS/1.0 header block) and `body`.
  void Encode(const ChangeEvent& event, std::string& subject, std::string& headers,
              std::string& body);

  // Appends the body of `event`; `key` as in the constructor (empty: the replica identity).
  static void AppendBody(const ChangeEvent& event, std::span<const std::string> truncate_scope,
                         std::span<const std::string> key, std::string& out);

 private:
  std::string prefix_;
  std::string stream_;
  std::map<std::string, std::vector<std::string>, std::less<>> keys_;
  std::vector<std::string> truncate_scope_;
  std::string qualified_;  // scratch
};

}  // namespace pgfanout::nats
