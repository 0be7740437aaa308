#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "decoders/pgoutput/messages.h"
#include "decoders/wal2json/document.h"
#include "decoders/wal2json/options.h"
#include "decoders/wal2json/shape_tracker.h"
#include "src/core/error.h"

namespace pgfanout::wal2json {

// Turns the documents of a wal2json format-version 2 stream (the payload of each XLogData,
// in order) into the pgoutput messages pgoutput would have sent for the same WAL, so that
// everything after the decoder is the same for both plugins.
//
// Options the stream must have been started with (src/source/replication_stream.cc):
// include-xids, include-timestamp, include-lsn, include-types (default), include-typmod
// (default), include-type-oids, include-pk, include-column-positions, include-transaction
// (default). What each document becomes is in decoders/wal2json/README.md; in short:
// - B is held back until the transaction's first change, so a transaction with nothing
//   for the tracked tables sends nothing, as pgoutput does; then Begin (B's "lsn" is the
//   commit LSN, as pgoutput's final_lsn), the changes, and Commit at C;
// - a transaction past options.stream_threshold_bytes goes out as Stream Start / Stop /
//   Commit segments instead, so that nothing holds it whole in memory;
// - I, U, D, T become Insert, Update, Delete, Truncate, preceded by a Relation when the
//   table's shape is new or changed (ShapeTracker); M becomes a LogicalMessage.
//
// Contract: whatever the input, Decode never crashes and rejects with kDecode: a document
// that does not parse (ParseDocument), one without a field its action needs, or one out of
// order (a change or C outside B ... C, B inside, C for another transaction). After an
// error the reader's state is unspecified: the caller drops the connection and Reset()s.
// Threads: not thread-safe; one instance per replication stream.
class Reader {
 public:
  explicit Reader(const ReaderOptions& options);

  // Decodes one document, appending 0..n messages to `out`.
  Result<void> Decode(std::string_view document, std::vector<pgoutput::Message>& out);

  // True between B and C: the reader holds part of a transaction.
  bool idle() const { return !open_.has_value(); }

  // Forgets the open transaction, after the connection dropped (the server sends it again
  // whole), and has every table announce its Relation again.
  void Reset();

 private:
  struct Open {
    Xid xid;
    Lsn commit_lsn;
    Lsn end_lsn;
    int64_t commit_time = 0;
    bool streaming = false;
    bool in_segment = false;
    std::vector<pgoutput::Message> held;  // before streaming: the transaction so far
    size_t bytes = 0;                     // document bytes held, or sent in the current segment
  };

  Result<void> OnBegin(const Document& doc);
  Result<void> OnCommit(const Document& doc, std::vector<pgoutput::Message>& out);
  // Hands on the messages of one document of the open transaction.
  void Add(std::vector<pgoutput::Message>& messages, size_t bytes,
           std::vector<pgoutput::Message>& out);

  ShapeTracker shapes_;
  size_t stream_threshold_bytes_;
  std::optional<Open> open_;
  std::vector<pgoutput::Message> scratch_;
};

}  // namespace pgfanout::wal2json
