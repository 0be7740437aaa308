#include "src/sinks/postgres/batch_plan.h"

#include <string>
#include <unordered_map>

#include "src/sinks/row_key.h"

namespace pgfanout {
namespace {

using row_key::AnyUnchanged;
using row_key::OldValue;

// Builds one segment; Close() hands it over when a cut comes.
class SegmentBuilder {
 public:
  bool empty() const { return segment_.tables.empty(); }

  // False when the table is already in the segment in another shape: cut first.
  bool Fits(const ChangeEvent& e, uint64_t fingerprint) const {
    auto it = tables_.find(e.table->QualifiedName());
    return it == tables_.end() || it->second.fingerprint == fingerprint;
  }

  void Put(const ChangeEvent& e, uint64_t fingerprint, const std::string& key, RowChange change) {
    auto [it, added] = tables_.try_emplace(e.table->QualifiedName());
    if (added) {
      it->second.fingerprint = fingerprint;
      it->second.index = segment_.tables.size();
      segment_.tables.push_back(TableChanges{.schema = e.table});
    }
    auto& changes = segment_.tables[it->second.index].changes;
    auto [at, fresh] = it->second.keys.try_emplace(key, changes.size());
    if (fresh) {
      changes.push_back(std::move(change));
    } else {
      changes[at->second] = std::move(change);
    }
  }

  const RowChange* Find(const ChangeEvent& e, const std::string& key) const {
    auto it = tables_.find(e.table->QualifiedName());
    if (it == tables_.end()) return nullptr;
    auto at = it->second.keys.find(key);
    if (at == it->second.keys.end()) return nullptr;
    return &segment_.tables[it->second.index].changes[at->second];
  }

  PlanSegment Close() {
    tables_.clear();
    return std::exchange(segment_, PlanSegment{});
  }

 private:
  struct TableState {
    uint64_t fingerprint = 0;
    size_t index = 0;
    std::unordered_map<std::string, size_t> keys;
  };
  PlanSegment segment_;
  std::unordered_map<std::string, TableState> tables_;
};

}  // namespace

Result<BatchPlan> PlanBatch(std::span<const ChangeEvent> events, const KeyLookup& keys) {
  BatchPlan plan;
  SegmentBuilder current;
  struct Shape {
    const std::vector<size_t>* key = nullptr;
    uint64_t fingerprint = 0;
  };
  std::unordered_map<const TableSchema*, Shape> shapes;
  std::string deleted_key;
  row_key::NewRowKey row;

  for (const ChangeEvent& e : events) {
    auto [shape_it, fresh] = shapes.try_emplace(e.table.get());
    if (fresh) {
      PGF_TRY(shape_it->second.key, keys(e.table));
      shape_it->second.fingerprint = e.table->Fingerprint();
    }
    const Shape& shape = shape_it->second;
    if (shape.key == nullptr) continue;  // the sink does not map this table
    const std::vector<size_t>& key = *shape.key;

    if (e.op == Op::kTruncate) {
      if (!current.empty()) plan.segments.push_back(current.Close());
      plan.segments.push_back(PlanSegment{
          .truncate = TruncateChange{
              .schema = e.table, .version = e.id.commit_lsn, .commit_time_us = e.commit_time_us}});
      continue;
    }
    if (!current.Fits(e, shape.fingerprint)) plan.segments.push_back(current.Close());

    RowChange change{.version = e.id.commit_lsn, .commit_time_us = e.commit_time_us};
    auto key_only = [&](const std::vector<Datum>& values) {
      std::vector<Datum> row(e.table->columns.size());
      for (size_t k : key) row[k] = values[k];
      return row;
    };

    if (e.op == Op::kDelete) {
      PGF_TRY(row_key::OfDelete(e, key, deleted_key));
      change.kind = RowChange::Kind::kDelete;
      const RowChange* earlier = current.Find(e, deleted_key);
      if (earlier != nullptr && earlier->kind == RowChange::Kind::kUpsert) {
        change.row = earlier->row;
        change.moved_from = earlier->moved_from;
        change.whole_row = true;
      } else if (!e.old_is_key_only && e.old_row.size() == e.table->columns.size() &&
                 !AnyUnchanged(e.old_row)) {
        change.row = e.old_row;
        change.whole_row = true;
      } else {
        change.row = key_only(e.old_row);
      }
      current.Put(e, shape.fingerprint, deleted_key, std::move(change));
      continue;
    }

    // Insert or update: the new row's key, and whether an update moved the row.
    change.row = e.new_row;
    PGF_TRY(row_key::OfNewRow(e, key, change.row, row));
    const bool moved = row.moved;

    if (AnyUnchanged(change.row)) {
      const RowChange* earlier = current.Find(e, moved ? row.old_encoded : row.encoded);
      if (earlier != nullptr && earlier->kind == RowChange::Kind::kUpsert) {
        for (size_t i = 0; i < change.row.size(); ++i) {
          if (change.row[i].kind == ValueKind::kUnchangedToast) change.row[i] = earlier->row[i];
        }
        // Still missing: they are in the target row the earlier change left them in, at
        // the key it came from if it moved, else at its own key (our old key).
        if (AnyUnchanged(change.row)) change.moved_from = earlier->moved_from;
        if (AnyUnchanged(change.row) && moved && change.moved_from.empty()) {
          for (size_t k : key) change.moved_from.push_back(OldValue(e, change.row, k));
        }
      } else if (moved) {
        for (size_t k : key) change.moved_from.push_back(OldValue(e, change.row, k));
      }
    }
    if (moved) {
      RowChange gone{.kind = RowChange::Kind::kDelete,
                     .row = std::vector<Datum>(e.table->columns.size()),
                     .version = change.version,
                     .commit_time_us = change.commit_time_us};
      for (size_t k : key) gone.row[k] = OldValue(e, change.row, k);
      current.Put(e, shape.fingerprint, row.old_encoded, std::move(gone));
    }
    current.Put(e, shape.fingerprint, row.encoded, std::move(change));
  }
  if (!current.empty()) plan.segments.push_back(current.Close());
  return plan;
}

}  // namespace pgfanout
