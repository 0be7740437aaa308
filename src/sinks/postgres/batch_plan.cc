#include "src/sinks/postgres/batch_plan.h"

#include <fmt/format.h>

#include <string>
#include <unordered_map>

namespace pgfanout {
namespace {

bool AnyUnchanged(const std::vector<Datum>& row) {
  for (const auto& d : row) {
    if (d.kind == ValueKind::kUnchangedToast) return true;
  }
  return false;
}

// Length-prefixed so that no two different keys encode alike.
void EncodeDatum(const Datum& d, std::string& out) {
  out.push_back(static_cast<char>(d.kind));
  out.append(std::to_string(d.text.size()));
  out.push_back(':');
  out.append(d.text);
}

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

Error MissingKey(const ChangeEvent& e, const std::string& column, const char* what) {
  return MakeError(ErrorKind::kMismatch,
                   fmt::format("table {}: {} at {} carries no value for key column \"{}\" (the "
                               "table's replica identity must cover the key)",
                               e.table->QualifiedName(), what, e.id.ToString(), column));
}

}  // namespace

Result<BatchPlan> PlanBatch(std::span<const ChangeEvent> events, const KeyLookup& keys) {
  BatchPlan plan;
  SegmentBuilder current;
  struct Shape {
    const std::vector<size_t>* key = nullptr;
    uint64_t fingerprint = 0;
  };
  std::unordered_map<const TableSchema*, Shape> shapes;
  std::string new_key, old_key;

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
      new_key.clear();
      for (size_t k : key) {
        if (k >= e.old_row.size() || e.old_row[k].kind != ValueKind::kText) {
          return MissingKey(e, e.table->columns[k].name, "DELETE");
        }
        EncodeDatum(e.old_row[k], new_key);
      }
      change.kind = RowChange::Kind::kDelete;
      const RowChange* earlier = current.Find(e, new_key);
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
      current.Put(e, shape.fingerprint, new_key, std::move(change));
      continue;
    }

    // Insert or update: the new row's key, and whether an update moved the row.
    change.row = e.new_row;
    bool moved = false;
    const bool has_old = e.op == Op::kUpdate && e.old_row.size() == e.new_row.size();
    new_key.clear();
    old_key.clear();
    for (size_t k : key) {
      Datum& now = change.row[k];
      const Datum* before = has_old ? &e.old_row[k] : nullptr;
      if (now.kind == ValueKind::kUnchangedToast) {
        if (before == nullptr || before->kind != ValueKind::kText) {
          return MissingKey(e, e.table->columns[k].name, "UPDATE");
        }
        now = *before;
      }
      // A NULL or unsent value in an old key says nothing: only a different value moves.
      if (before != nullptr && before->kind == ValueKind::kText && *before != now) moved = true;
      EncodeDatum(now, new_key);
    }
    if (moved) {
      for (size_t k : key) {
        EncodeDatum(e.old_row[k].kind == ValueKind::kText ? e.old_row[k] : change.row[k], old_key);
      }
    }

    if (AnyUnchanged(change.row)) {
      const RowChange* earlier = current.Find(e, moved ? old_key : new_key);
      if (earlier != nullptr && earlier->kind == RowChange::Kind::kUpsert) {
        for (size_t i = 0; i < change.row.size(); ++i) {
          if (change.row[i].kind == ValueKind::kUnchangedToast) change.row[i] = earlier->row[i];
        }
        // Still missing: they are in the target row the earlier change left them in, at
        // the key it came from if it moved, else at its own key (our old key).
        if (AnyUnchanged(change.row)) change.moved_from = earlier->moved_from;
        if (AnyUnchanged(change.row) && moved && change.moved_from.empty()) {
          for (size_t k : key) {
            change.moved_from.push_back(e.old_row[k].kind == ValueKind::kText ? e.old_row[k]
                                                                              : change.row[k]);
          }
        }
      } else if (moved) {
        for (size_t k : key) {
          change.moved_from.push_back(e.old_row[k].kind == ValueKind::kText ? e.old_row[k]
                                                                            : change.row[k]);
        }
      }
    }
    if (moved) {
      RowChange gone{.kind = RowChange::Kind::kDelete,
                     .row = std::vector<Datum>(e.table->columns.size()),
                     .version = change.version,
                     .commit_time_us = change.commit_time_us};
      for (size_t k : key) {
        gone.row[k] = e.old_row[k].kind == ValueKind::kText ? e.old_row[k] : change.row[k];
      }
      current.Put(e, shape.fingerprint, old_key, std::move(gone));
    }
    current.Put(e, shape.fingerprint, new_key, std::move(change));
  }
  if (!current.empty()) plan.segments.push_back(current.Close());
  return plan;
}

}  // namespace pgfanout
