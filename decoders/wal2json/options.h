#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pgfanout::wal2json {

// What the source's catalog said about one tracked table when the stream started. wal2json
// documents carry no table OID, no replica identity and no numeric type modifier, and an
// UPDATE leaves out the columns whose TOASTed value it did not change; the reader takes
// those from here for as long as the documents agree with it (decoders/wal2json/README.md).
struct TableHint {
  struct Column {
    int32_t attnum = 0;  // pg_attribute.attnum
    std::string name;
    uint32_t type_oid = 0;
    int32_t type_modifier = -1;
    // format_type(atttypid, atttypmod) as wal2json prints it: a quoted identifier without
    // its outer double quotes.
    std::string type_text;
    bool in_primary_key = false;
    bool in_identity_index = false;  // in the REPLICA IDENTITY USING INDEX index
    bool generated = false;          // GENERATED ... STORED: pgoutput (PG 15) leaves it out
  };
  std::string schema;
  std::string table;
  uint32_t relation_id = 0;     // pg_class.oid
  char replica_identity = 'd';  // pg_class.relreplident
  std::vector<Column> columns;  // in attnum order, dropped columns left out
};

struct ReaderOptions {
  std::vector<TableHint> tables;
  // wal2json sends a large transaction only at commit, one document per change, and never
  // streams it. Once a transaction's documents pass this many bytes the reader hands it on
  // as a streamed transaction (Stream Start ... Stream Commit), cut into segments of about
  // this size, so the assembler spills it instead of holding it in memory; smaller ones go
  // out as Begin ... Commit. The source sets it to the server's logical_decoding_work_mem,
  // the size past which pgoutput would have had the server stream.
  size_t stream_threshold_bytes = size_t{64} << 20;
};

}  // namespace pgfanout::wal2json
