#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

struct TargetColumn {
  std::string name;
  std::string type;       // format_type(atttypid, atttypmod): "character varying(20)"
  std::string base_type;  // format_type(atttypid, -1): "character varying", "bpchar"
  bool own = false;       // made by the sink from a source column (kOwnColumnComment)
};

struct TargetTable {
  bool exists = false;
  std::vector<TargetColumn> columns;

  const TargetColumn* Find(const std::string& name) const;
};

// What the sink knows of its target database's catalog: table columns and the names of
// source types. Cached per connection; Forget() a table after DDL on it, Clear() after a
// failed transaction (its DDL rolled back).
class TargetCatalog {
 public:
  // Errors are the connection's (see PgConnection::Exec).
  Result<const TargetTable*> Table(const PgConnection& conn, const std::string& schema,
                                   const std::string& table);
  void Forget(const std::string& schema, const std::string& table);
  void Clear();

  // The type a column of `source` type has on the target: the builtin type's name there
  // (format_type with the modifier), or "text" for a type the source defined itself (enum,
  // domain, composite), which the target may not have. Fetches unknown ones in one query.
  Result<void> Resolve(const PgConnection& conn, const TableSchema& schema);
  // After Resolve(): the name for `column`.
  const std::string& TypeOf(const ColumnSchema& column) const;

 private:
  std::map<std::pair<std::string, std::string>, TargetTable> tables_;
  std::map<std::pair<uint32_t, int32_t>, std::string> types_;
};

// The first user type's OID: anything below is builtin, with the same OID on every server.
inline constexpr uint32_t kFirstNormalObjectId = 16384;

}  // namespace pgfanout
