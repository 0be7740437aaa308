#include "src/sinks/row_key.h"

#include <fmt/format.h>

namespace pgfanout::row_key {

void Encode(const Datum& d, std::string& out) {
  out.push_back(static_cast<char>(d.kind));
  out.append(std::to_string(d.text.size()));
  out.push_back(':');
  out.append(d.text);
}

bool AnyUnchanged(const std::vector<Datum>& row) {
  for (const auto& d : row) {
    if (d.kind == ValueKind::kUnchangedToast) return true;
  }
  return false;
}

Error MissingKey(const ChangeEvent& e, const std::string& column, const char* what) {
  return MakeError(ErrorKind::kMismatch,
                   fmt::format("table {}: {} at {} carries no value for key column \"{}\" (the "
                               "table's replica identity must cover the key)",
                               e.table->QualifiedName(), what, e.id.ToString(), column));
}

Result<void> OfDelete(const ChangeEvent& e, const std::vector<size_t>& key, std::string& encoded) {
  encoded.clear();
  for (size_t k : key) {
    if (k >= e.old_row.size() || e.old_row[k].kind != ValueKind::kText) {
      return MissingKey(e, e.table->columns[k].name, "DELETE");
    }
    Encode(e.old_row[k], encoded);
  }
  return boost::outcome_v2::success();
}

Result<void> OfNewRow(const ChangeEvent& e, const std::vector<size_t>& key, std::vector<Datum>& row,
                      NewRowKey& out) {
  const bool has_old = e.op == Op::kUpdate && e.old_row.size() == row.size();
  out.encoded.clear();
  out.old_encoded.clear();
  out.moved = false;
  for (size_t k : key) {
    Datum& now = row[k];
    const Datum* before = has_old ? &e.old_row[k] : nullptr;
    if (now.kind == ValueKind::kUnchangedToast) {
      if (before == nullptr || before->kind != ValueKind::kText) {
        return MissingKey(e, e.table->columns[k].name, "UPDATE");
      }
      now = *before;
    }
    if (before != nullptr && before->kind == ValueKind::kText && *before != now) out.moved = true;
    Encode(now, out.encoded);
  }
  if (out.moved) {
    for (size_t k : key) Encode(OldValue(e, row, k), out.old_encoded);
  }
  return boost::outcome_v2::success();
}

}  // namespace pgfanout::row_key
