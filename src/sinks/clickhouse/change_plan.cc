#include "src/sinks/clickhouse/change_plan.h"

#include <string>
#include <unordered_map>

#include "src/sinks/row_key.h"

namespace pgfanout::clickhouse {
namespace {

using row_key::AnyUnchanged;
using row_key::OldValue;

// Collects one step; Close() hands it over at a cut.
class StepBuilder {
 public:
  bool empty() const { return step_.tables.empty(); }

  // False when the table is in the step already in another shape: cut first.
  bool Fits(const ChangeEvent& e, uint64_t fingerprint) const {
    auto it = tables_.find(e.table->QualifiedName());
    return it == tables_.end() || it->second.fingerprint == fingerprint;
  }

  const PlannedRow* Find(const ChangeEvent& e, const std::string& key) const {
    auto it = tables_.find(e.table->QualifiedName());
    if (it == tables_.end()) return nullptr;
    auto at = it->second.keys.find(key);
    if (at == it->second.keys.end()) return nullptr;
    return &step_.tables[it->second.index].rows[at->second];
  }

  void Put(const ChangeEvent& e, uint64_t fingerprint, const std::string& key, PlannedRow row) {
    auto [it, added] = tables_.try_emplace(e.table->QualifiedName());
    if (added) {
      it->second.fingerprint = fingerprint;
      it->second.index = step_.tables.size();
      step_.tables.push_back(PlannedTable{.schema = e.table, .first = e.id});
    }
    PlannedTable& table = step_.tables[it->second.index];
    table.last = e.id;
    auto [at, fresh] = it->second.keys.try_emplace(key, table.rows.size());
    if (fresh) {
      table.rows.push_back(std::move(row));
    } else {
      table.rows[at->second] = std::move(row);
    }
  }

  PlanStep Close() {
    tables_.clear();
    return std::exchange(step_, PlanStep{});
  }

 private:
  struct TableState {
    uint64_t fingerprint = 0;
    size_t index = 0;
    std::unordered_map<std::string, size_t> keys;
  };
  PlanStep step_;
  std::unordered_map<std::string, TableState> tables_;
};

}  // namespace

Result<std::vector<PlanStep>> PlanChanges(std::span<const ChangeEvent> events,
                                          const ShapeKey& key_of) {
  std::vector<PlanStep> steps;
  StepBuilder current;
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
      PGF_TRY(shape_it->second.key, key_of(e.table));
      shape_it->second.fingerprint = e.table->Fingerprint();
    }
    const Shape& shape = shape_it->second;
    if (shape.key == nullptr) continue;  // not mapped by this sink
    const std::vector<size_t>& key = *shape.key;
    const size_t width = e.table->columns.size();

    if (e.op == Op::kTruncate) {
      if (!current.empty()) steps.push_back(current.Close());
      steps.push_back(
          PlanStep{.truncate = PlannedTruncate{.schema = e.table, .version = e.id.commit_lsn}});
      continue;
    }
    if (!current.Fits(e, shape.fingerprint)) steps.push_back(current.Close());
    PlannedRow change{.version = e.id.commit_lsn, .event = e.id};

    if (e.op == Op::kDelete) {
      PGF_TRY(row_key::OfDelete(e, key, deleted_key));
      change.deleted = true;
      change.row.assign(width, Datum{});
      for (size_t i = 0; i < width && i < e.old_row.size(); ++i) {
        if (e.old_row[i].kind == ValueKind::kText) change.row[i] = e.old_row[i];
      }
      current.Put(e, shape.fingerprint, deleted_key, std::move(change));
      continue;
    }

    // Insert or update: the new key, and whether an update moved the row to it.
    change.row = e.new_row;
    PGF_TRY(row_key::OfNewRow(e, key, change.row, row));
    const bool moved = row.moved;
    const std::string& new_key = row.encoded;
    const std::string& old_key = row.old_encoded;
    std::vector<Datum> old_key_values, new_key_values;
    for (size_t k : key) {
      new_key_values.push_back(change.row[k]);
      if (moved) old_key_values.push_back(OldValue(e, change.row, k));
    }

    if (AnyUnchanged(change.row)) {
      // Values the server did not resend: an earlier change of the row in this step has
      // them, or has them pending from the target row it names; else the target row the
      // change was made to (before the batch) has them.
      const PlannedRow* earlier = current.Find(e, moved ? old_key : new_key);
      if (earlier != nullptr && !earlier->deleted) {
        for (size_t i = 0; i < change.row.size(); ++i) {
          if (change.row[i].kind == ValueKind::kUnchangedToast) change.row[i] = earlier->row[i];
        }
        if (AnyUnchanged(change.row)) change.toast_from = earlier->toast_from;
      } else {
        change.toast_from = moved ? old_key_values : new_key_values;
      }
    }
    if (moved) {
      PlannedRow gone{.deleted = true,
                      .row = std::vector<Datum>(width),
                      .version = change.version,
                      .event = e.id};
      for (size_t j = 0; j < key.size(); ++j) gone.row[key[j]] = old_key_values[j];
      current.Put(e, shape.fingerprint, old_key, std::move(gone));
    }
    current.Put(e, shape.fingerprint, new_key, std::move(change));
  }
  if (!current.empty()) steps.push_back(current.Close());
  return steps;
}

}  // namespace pgfanout::clickhouse
