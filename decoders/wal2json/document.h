#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/core/lsn.h"

namespace pgfanout::wal2json {

// The "action" of a format-version 2 document; the values are the letters wal2json prints.
enum class Action : char {
  kBegin = 'B',
  kCommit = 'C',
  kInsert = 'I',
  kUpdate = 'U',
  kDelete = 'D',
  kTruncate = 'T',
  kMessage = 'M',
};

// One element of "columns", "identity" or "pk".
struct Column {
  std::string name;
  std::string type;        // "type" (format_type text); "" when absent
  uint32_t type_oid = 0;   // "typeoid"; 0 when absent
  int32_t position = 0;    // "position" (attnum); 0 when absent
  bool has_value = false;  // "pk" elements carry no value
  // The value in the text form pgoutput sends: JSON true/false become "t"/"f", numbers
  // keep the digits wal2json printed, bytea gets back the "\x" wal2json strips.
  Datum value;
};

// One wal2json format-version 2 document, checked for shape: each field has its JSON type,
// appears at most once, and is one wal2json prints. Which fields an action needs is the
// caller's business (reader.cc).
struct Document {
  Action action = Action::kBegin;
  std::optional<Xid> xid;                 // null for non-transactional messages
  std::optional<int64_t> commit_time_us;  // "timestamp", microseconds since 2000-01-01
  std::optional<Lsn> lsn;
  std::optional<Lsn> next_lsn;
  std::optional<std::string> schema;
  std::optional<std::string> table;
  std::optional<std::vector<Column>> columns;
  std::optional<std::vector<Column>> identity;
  std::optional<std::vector<Column>> pk;
  std::optional<bool> transactional;
  std::optional<std::string> prefix;
  std::optional<std::string> content;
};

// Parses one document (the whole payload of one XLogData).
//
// Contract: pure and strict; never reads outside `text`. Rejects with kDecode anything that
// is not one JSON object of the format-version 2 shape: invalid JSON or trailing bytes, an
// unknown or repeated key, a field of the wrong JSON type, an unknown action, an LSN or
// timestamp that does not parse, a nested value where a scalar belongs. The message names
// the byte offset and the field: `wal2json document at byte 57 (columns[1].typeoid):
// expected an unsigned 32-bit number`.
Result<Document> ParseDocument(std::string_view text);

// Microseconds since 2000-01-01 00:00 UTC of a timestamptz as PostgreSQL's
// timestamptz_to_str prints it ("2026-12-01 18:07:07.128468+00", offsets as +HH, +HH:MM or
// +HH:MM:SS); nullopt unless it has exactly that form.
std::optional<int64_t> ParseTimestamptz(std::string_view text);

}  // namespace pgfanout::wal2json
