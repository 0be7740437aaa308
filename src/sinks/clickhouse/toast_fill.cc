#include "src/sinks/clickhouse/toast_fill.h"

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <set>

#include "src/sinks/clickhouse/tsv_reader.h"

namespace pgfanout::clickhouse {
namespace {

// The lookup's key list appears twice in its statement; ClickHouse takes statements up to
// max_query_size (256 KiB by default).
constexpr size_t kKeyBytesPerQuery = 90 * 1024;

bool Unchanged(const PlannedRow& r) {
  if (r.deleted || r.toast_from.empty()) return false;
  for (const auto& d : r.row) {
    if (d.kind == ValueKind::kUnchangedToast) return true;
  }
  return false;
}

std::string KeyText(const std::vector<Datum>& key) {
  std::string out;
  for (const auto& d : key) {
    out.append(std::to_string(d.text.size())).push_back(':');
    out.append(d.text);
  }
  return out;
}

// One pass: every row still waiting reads its values at its `toast_from` key.
Result<void> FillFrom(ClickHouseHttp& ch, const RowEncoder& encoder, PlannedTable& table) {
  // Distinct target keys to read, the rows waiting on each, and the columns wanted.
  std::map<std::string, size_t> index_of;
  std::vector<const std::vector<Datum>*> keys;
  std::vector<std::vector<size_t>> waiting;
  std::set<size_t> wanted;
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const PlannedRow& r = table.rows[i];
    if (!Unchanged(r)) continue;
    auto [it, fresh] = index_of.try_emplace(KeyText(r.toast_from), keys.size());
    if (fresh) {
      keys.push_back(&r.toast_from);
      waiting.emplace_back();
    }
    waiting[it->second].push_back(i);
    for (size_t c = 0; c < r.row.size(); ++c) {
      if (r.row[c].kind == ValueKind::kUnchangedToast) wanted.insert(c);
    }
  }
  if (keys.empty()) return boost::outcome_v2::success();
  const std::vector<size_t> columns(wanted.begin(), wanted.end());

  for (size_t begin = 0; begin < keys.size();) {
    size_t end = begin, bytes = 0;
    while (end < keys.size() && (end == begin || bytes < kKeyBytesPerQuery)) {
      for (const auto& d : *keys[end]) bytes += d.text.size() * 2 + 48;
      ++end;
    }
    std::vector<const std::vector<Datum>*> chunk(keys.begin() + begin, keys.begin() + end);
    PGF_TRY(auto sql, encoder.LookupSql(chunk, columns));
    auto text = ch.Query("reading values the update left unchanged", sql);
    if (!text) return text.error().Wrap(encoder.target().Describe());
    PGF_TRY(auto rows, ParseTsv(text.value()));
    for (auto& got : rows) {
      size_t position = 0;
      const std::string& first = got.empty() || !got[0] ? std::string() : *got[0];
      auto [p, ec] = std::from_chars(first.data(), first.data() + first.size(), position);
      if (ec != std::errc() || position < 1 || position > chunk.size() ||
          got.size() != columns.size() + 1) {
        return MakeError(ErrorKind::kSink,
                         encoder.target().Describe() + ": unreadable answer to a lookup by key");
      }
      for (size_t i : waiting[begin + position - 1]) {
        auto& row = table.rows[i].row;
        for (size_t j = 0; j < columns.size(); ++j) {
          Datum& d = row[columns[j]];
          if (d.kind != ValueKind::kUnchangedToast) continue;
          d = got[j + 1] ? Datum{ValueKind::kText, *got[j + 1]} : Datum{};
        }
      }
    }
    begin = end;
  }
  return boost::outcome_v2::success();
}

}  // namespace

Result<void> FillUnchangedValues(ClickHouseHttp& ch, const RowEncoder& encoder,
                                 PlannedTable& table) {
  PGF_TRY(FillFrom(ch, encoder, table));
  // A batch applied again after a crash between its rows and its position: a row it moved
  // has, at its old key, the delete marker this batch wrote the first time, and its values
  // are already at its new key (same version). Read them there.
  bool again = false;
  const std::vector<size_t>& key = encoder.target().key;
  for (PlannedRow& r : table.rows) {
    if (!Unchanged(r)) continue;
    std::vector<Datum> own;
    own.reserve(key.size());
    for (size_t k : key) own.push_back(r.row[k]);
    if (own == r.toast_from) continue;
    r.toast_from = std::move(own);
    again = true;
  }
  if (again) PGF_TRY(FillFrom(ch, encoder, table));
  return boost::outcome_v2::success();
}

}  // namespace pgfanout::clickhouse
