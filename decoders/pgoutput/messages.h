#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/lsn.h"

namespace pgfanout::pgoutput {

// The first byte of every pgoutput message (PostgreSQL docs, "Logical Replication
// Message Formats"). See decoders/pgoutput/README.md for the layouts.
enum class MsgType : char {
  kBegin = 'B',
  kMessage = 'M',
  kCommit = 'C',
  kOrigin = 'O',
  kRelation = 'R',
  kType = 'Y',
  kInsert = 'I',
  kUpdate = 'U',
  kDelete = 'D',
  kTruncate = 'T',
  kStreamStart = 'S',
  kStreamStop = 'E',
  kStreamCommit = 'c',
  kStreamAbort = 'A',
};

// Tuple data: one Datum per column (null, text, or unchanged TOAST).
using Tuple = std::vector<Datum>;

struct Begin {
  Lsn final_lsn;            // LSN of the commit record
  int64_t commit_time = 0;  // microseconds since 2000-01-01 (Postgres epoch)
  Xid xid;
};

struct Commit {
  uint8_t flags = 0;  // currently always 0
  Lsn commit_lsn;
  Lsn end_lsn;
  int64_t commit_time = 0;
};

struct Origin {
  Lsn commit_lsn;
  std::string name;
};

struct RelationColumn {
  uint8_t flags = 0;  // 1 = part of the key
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;
};

struct Relation {
  Xid xid;  // only inside a streamed block (protocol v2), else 0
  RelationId relation_id;
  std::string namespace_name;  // "" means pg_catalog
  std::string relation_name;
  char replica_identity = 'd';
  std::vector<RelationColumn> columns;
};

struct Type {
  Xid xid;
  uint32_t type_oid = 0;
  std::string namespace_name;
  std::string type_name;
};

struct Insert {
  Xid xid;
  RelationId relation_id;
  Tuple new_tuple;
};

struct Update {
  Xid xid;
  RelationId relation_id;
  // 'K' (old key), 'O' (old row) or 0 when no old tuple was sent.
  char old_kind = 0;
  Tuple old_tuple;
  Tuple new_tuple;
};

struct Delete {
  Xid xid;
  RelationId relation_id;
  char old_kind = 'K';  // 'K' or 'O'
  Tuple old_tuple;
};

struct Truncate {
  Xid xid;
  uint8_t options = 0;  // 1 = CASCADE, 2 = RESTART IDENTITY
  std::vector<RelationId> relation_ids;
};

struct LogicalMessage {
  Xid xid;
  bool transactional = false;
  Lsn lsn;
  std::string prefix;
  std::string content;
};

struct StreamStart {
  Xid xid;
  bool first_segment = false;
};

struct StreamStop {};

struct StreamCommit {
  Xid xid;
  uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  int64_t commit_time = 0;
};

struct StreamAbort {
  Xid xid;     // top-level transaction
  Xid subxid;  // == xid when the whole transaction aborted
};

using Message =
    std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate,
                 LogicalMessage, StreamStart, StreamStop, StreamCommit, StreamAbort>;

}  // namespace pgfanout::pgoutput
