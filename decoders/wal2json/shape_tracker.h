#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "decoders/pgoutput/messages.h"
#include "decoders/wal2json/document.h"
#include "decoders/wal2json/options.h"
#include "src/core/error.h"

namespace pgfanout::wal2json {

// Keeps, per table, the shape pgoutput would have described in its last Relation message,
// and turns change documents into the pgoutput messages of the same change.
//
// A table starts from its hint (the catalog when the stream started) and follows what the
// documents show: an INSERT lists every column, as does the identity of a table under
// REPLICA IDENTITY FULL; an UPDATE leaves out the columns whose TOASTed value it did not
// change, which become kUnchangedToast when the shape says they exist and their type can
// be TOASTed. Whenever the shape changes (or a table is first used) a Relation goes out
// before the change, as pgoutput sends one. See decoders/wal2json/README.md.
//
// Threads: not thread-safe; owned by one Reader.
class ShapeTracker {
 public:
  explicit ShapeTracker(const std::vector<TableHint>& hints);

  // Appends the messages for one I, U, D or T document to `out`: a Relation when needed,
  // then the Insert, Update, Delete or Truncate (xid 0, as outside a stream). Errors
  // (kDecode) name the action and table: a missing field, or a DELETE whose identity names
  // a column the table does not have.
  Result<void> Translate(Document&& doc, std::vector<pgoutput::Message>& out);

  // Makes the next change of every table announce its Relation again.
  void ForgetAnnounced();

 private:
  struct Col {
    int32_t attnum = 0;  // 0: not known (learned from an identity, which has no positions)
    std::string name;
    uint32_t type_oid = 0;
    std::string type_text;
    int32_t typmod = -1;
    bool key = false;
    bool generated = false;  // present in documents, absent from what pgoutput sends

    friend bool operator==(const Col&, const Col&) = default;
  };
  struct Shape {
    RelationId relation_id;
    std::string schema;
    std::string table;
    char replica_identity = 'd';
    std::vector<Col> columns;
    bool announced = false;  // a Relation went out in this session
    char announced_identity = 0;
  };
  // A document's columns laid over a shape: the columns it now has, and for each the index
  // of the document column holding its value (-1: left out, i.e. unchanged TOAST).
  struct Layout {
    std::vector<Col> columns;
    std::vector<int> source;
  };

  Shape& ShapeFor(const std::string& schema, const std::string& table);
  Col Merge(const Column& doc, const Col* known) const;
  Layout FromComplete(const Shape& shape, const std::vector<Column>& doc) const;
  Layout FromPartial(const Shape& shape, const std::vector<Column>& doc) const;
  void SetKeys(Shape& shape, std::vector<Col>& columns, const Document& doc) const;
  void Announce(Shape& shape, const std::vector<Col>& columns, std::vector<pgoutput::Message>& out);
  // A full tuple of `shape` from the document columns `layout` points at.
  pgoutput::Tuple Values(const Shape& shape, const Layout& layout, std::vector<Column>& doc) const;
  // The values of `identity` by column name, others NULL (key-only) or missing (-> error).
  Result<pgoutput::Tuple> OldTuple(const Shape& shape, std::vector<Column>& identity,
                                   bool key_only) const;
  Result<void> Update(Shape& shape, Document& doc, std::vector<pgoutput::Message>& out);
  Result<void> Delete(Shape& shape, Document& doc, std::vector<pgoutput::Message>& out);

  std::map<std::pair<std::string, std::string>, Shape> shapes_;
};

}  // namespace pgfanout::wal2json
