#include "src/sinks/clickhouse/change_plan.h"

#include <fmt/format.h>

#include <string>
#include <unordered_map>

namespace pgfanout::clickhouse {
namespace {

bool AnyUnchanged(const std::vector<Datum>& row) {
  for (const auto& d : row) {
    if (d.kind == ValueKind::kUnchangedToast) return true;
  }
  return false;
}

// Length-prefixed, so that no two different keys encode alike.
void EncodeDatum(const Datum& d, std::string& out) {
  out.push_back(static_cast<char>(d.kind));
  out.append(std::to_string(d.text.size()));
  out.push_back(':');
  out.append(d.text);
}

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

Error MissingKey(const ChangeEvent& e, const std::string& column, const char* what) {
  return MakeError(ErrorKind::kMismatch,
                   fmt::format("table {}: {} at {} carries no value for key column \"{}\" (the "
                               "table's replica identity must cover the key)",
                               e.table->QualifiedName(), what, e.id.ToString(), column));
}

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
  std::string new_key, old_key;

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
      new_key.clear();
      for (size_t k : key) {
        if (k >= e.old_row.size() || e.old_row[k].kind != ValueKind::kText) {
          return MissingKey(e, e.table->columns[k].name, "DELETE");
        }
        EncodeDatum(e.old_row[k], new_key);
      }
      change.deleted = true;
      change.row.assign(width, Datum{});
      for (size_t i = 0; i < width && i < e.old_row.size(); ++i) {
        if (e.old_row[i].kind == ValueKind::kText) change.row[i] = e.old_row[i];
      }
      current.Put(e, shape.fingerprint, new_key, std::move(change));
      continue;
    }

    // Insert or update: the new key, and whether an update moved the row to it.
    change.row = e.new_row;
    const bool has_old = e.op == Op::kUpdate && e.old_row.size() == e.new_row.size();
    bool moved = false;
    new_key.clear();
    old_key.clear();
    std::vector<Datum> old_key_values, new_key_values;
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
      new_key_values.push_back(now);
    }
    if (moved) {
      for (size_t k : key) {
        const Datum& v = e.old_row[k].kind == ValueKind::kText ? e.old_row[k] : change.row[k];
        EncodeDatum(v, old_key);
        old_key_values.push_back(v);
      }
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
