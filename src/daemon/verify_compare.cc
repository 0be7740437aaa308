#include "src/daemon/verify_compare.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <string_view>

namespace pgfanout {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPageRows = 10'000;
constexpr auto kProgressEvery = std::chrono::seconds(5);
// At least this many buckets: ~10,000 rows each up to 10M rows, more beyond.
constexpr int64_t kMinBuckets = 1024;
constexpr int64_t kMaxBuckets = 1 << 20;
constexpr size_t kShownBytes = 60;

// ROW(a::text, b::text)::text: one text per row in which NULL and '' differ and no value can
// forge a separator; equal on both sides exactly when every column's text is.
std::string RowText(const VerifySide& side, const std::vector<size_t>& pick) {
  std::string cols;
  for (size_t i : pick) cols += (cols.empty() ? "" : ", ") + side.columns[i] + "::text";
  return "ROW(" + cols + ")::text";
}

std::string AllColumns(const VerifySide& side) {
  std::vector<size_t> all(side.columns.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return RowText(side, all);
}

// The rows of `side` with their bucket `b` and key text `k` (and `extra` select items).
std::string Rows(const VerifySide& side, const std::vector<size_t>& key, int64_t buckets,
                 const std::string& extra) {
  const std::string k = RowText(side, key);
  return fmt::format(
      "SELECT (('x' || substr(md5({}), 1, 8))::bit(32)::bigint % {})::int AS b, {} AS k{} "
      "FROM {}{}",
      k, buckets, k, extra, side.from, side.where.empty() ? "" : " WHERE " + side.where);
}

std::string SummarySql(const VerifySide& side, const std::vector<size_t>& key, int64_t buckets) {
  return fmt::format(
      "SELECT b, count(*), sum(h)::text FROM ({}) q GROUP BY b",
      Rows(side, key, buckets,
           ", ('x' || substr(md5(" + AllColumns(side) + "), 1, 15))::bit(60)::bigint AS h"));
}

std::string CursorSql(const VerifySide& side, const std::vector<size_t>& key, int64_t buckets,
                      const std::string& filter) {
  std::string extra, names;
  for (size_t i = 0; i < side.columns.size(); ++i) {
    extra += fmt::format(", {}::text AS v{}", side.columns[i], i);
    names += fmt::format(", v{}", i);
  }
  return fmt::format(
      "DECLARE pgfanout_verify NO SCROLL CURSOR FOR SELECT b, k{} FROM ({}) q{} "
      "ORDER BY b, k COLLATE \"C\"",
      names, Rows(side, key, buckets, extra), filter.empty() ? "" : " WHERE " + filter);
}

// Runs sql[i] on conns[i] at once ("" skips one) and waits for both, logging `what` every
// few seconds; the results in the same order (null where skipped).
Result<std::array<PgResult, 2>> ExecBoth(const std::array<const PgConnection*, 2>& conns,
                                         const std::array<std::string, 2>& sql,
                                         const std::string& what) {
  constexpr std::array<const char*, 2> kPeer = {"source", "target"};
  std::array<PgResult, 2> results;
  std::array<std::string, 2> errors;
  std::array<bool, 2> busy = {false, false};
  for (size_t i = 0; i < 2; ++i) {
    if (sql[i].empty()) continue;
    busy[i] = PQsendQuery(conns[i]->get(), sql[i].c_str()) == 1;
    if (!busy[i]) errors[i] = conns[i]->LastError();
  }
  const auto start = Clock::now();
  auto next_log = start + kProgressEvery;
  while (busy[0] || busy[1]) {
    std::array<pollfd, 2> fds{};
    nfds_t n = 0;
    for (size_t i = 0; i < 2; ++i) {
      if (busy[i]) fds[n++] = pollfd{.fd = PQsocket(conns[i]->get()), .events = POLLIN};
    }
    ::poll(fds.data(), n, 1000);
    for (size_t i = 0; i < 2; ++i) {
      PGconn* c = conns[i]->get();
      if (!busy[i]) continue;
      if (PQconsumeInput(c) != 1) {
        errors[i] = conns[i]->LastError();
        busy[i] = false;
        continue;
      }
      while (busy[i] && PQisBusy(c) == 0) {
        PgResult r(PQgetResult(c));
        if (!r) {
          busy[i] = false;
        } else if (PQresultStatus(r.get()) == PGRES_TUPLES_OK) {
          results[i] = std::move(r);
        } else if (errors[i].empty()) {
          const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
          // No DETAIL: it can quote a row (pgclient's ServerErrorText).
          errors[i] = fmt::format("{} (SQLSTATE {})", ServerErrorText(r.get()),
                                  state ? state : "none");
        }
      }
    }
    if (Clock::now() >= next_log) {
      spdlog::info("{} ({} s so far)", what,
                   std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count());
      next_log += kProgressEvery;
    }
  }
  for (size_t i = 0; i < 2; ++i) {
    if (errors[i].empty()) continue;
    std::string msg = errors[i];
    msg.erase(std::remove(msg.begin(), msg.end(), '\n'), msg.end());
    auto kind =
        PQstatus(conns[i]->get()) == CONNECTION_OK ? ErrorKind::kProtocol : ErrorKind::kConnection;
    return MakeError(kind, fmt::format("{} on the {}: {}", what, kPeer[i], msg));
  }
  return results;
}

// A side's cursor, read a page at a time. Row layout: bucket, key text, the columns.
class CursorRows {
 public:
  // `side`: 0 for the source, 1 for the target (as in ExecBoth).
  CursorRows(const PgConnection& conn, size_t side, std::string what)
      : conn_(conn), side_(side), what_(std::move(what)) {}

  Result<void> Open(const std::string& declare) {
    PGF_TRY(conn_.Exec(what_, declare));
    open_ = true;
    return boost::outcome_v2::success();
  }
  Result<void> Close() {
    if (open_) PGF_TRY(conn_.Exec(what_, "CLOSE pgfanout_verify"));
    open_ = false;
    return boost::outcome_v2::success();
  }
  // Moves to the next row; false past the last one (or when never opened).
  Result<bool> Next() {
    if (!open_) return false;
    if (++row_ < rows_) return true;
    if (done_) return false;
    // The first FETCH waits for the server to sort the rows: through ExecBoth, which logs.
    std::array<std::string, 2> sql;
    sql[side_] = fmt::format("FETCH {} FROM pgfanout_verify", kPageRows);
    PGF_TRY(auto pages, ExecBoth({&conn_, &conn_}, sql, what_));
    page_ = std::move(pages[side_]);
    rows_ = PQntuples(page_.get());
    row_ = 0;
    done_ = rows_ < kPageRows;
    return rows_ > 0;
  }
  int Bucket() const { return std::atoi(PQgetvalue(page_.get(), row_, 0)); }
  std::string_view Key() const { return Field(1).value_or(""); }
  std::optional<std::string_view> Value(size_t column) const {
    return Field(static_cast<int>(column) + 2);
  }

 private:
  std::optional<std::string_view> Field(int col) const {
    if (PQgetisnull(page_.get(), row_, col)) return std::nullopt;
    return std::string_view(PQgetvalue(page_.get(), row_, col),
                            static_cast<size_t>(PQgetlength(page_.get(), row_, col)));
  }

  const PgConnection& conn_;
  size_t side_;
  std::string what_;
  PgResult page_;
  int row_ = -1;
  int rows_ = 0;
  bool open_ = false;
  bool done_ = false;
};

int CompareRows(const CursorRows& a, const CursorRows& b) {
  if (a.Bucket() != b.Bucket()) return a.Bucket() < b.Bucket() ? -1 : 1;
  return a.Key().compare(b.Key());  // bytewise, as COLLATE "C" orders
}

// 'it''s' with control characters escaped, cut after kShownBytes; NULL unquoted.
std::string Show(const std::optional<std::string_view>& value) {
  if (!value) return "NULL";
  size_t cut = std::min(value->size(), kShownBytes);
  while (cut > 0 && cut < value->size() && ((*value)[cut] & 0xC0) == 0x80) --cut;  // UTF-8
  std::string out = "'";
  for (char c : value->substr(0, cut)) {
    if (c == '\'') {
      out += "''";
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  out += "'";
  if (cut < value->size()) out += fmt::format("… ({} bytes)", value->size());
  return out;
}

// (tenant_id, id)=(7, 42), as Postgres words key details.
std::string ShowKey(const TableVerifyPlan& plan, const CursorRows& row) {
  std::string names, values;
  for (size_t i : plan.key) {
    names += (names.empty() ? "" : ", ") + DisplayIdent(plan.source_columns[i]);
    values += (values.empty() ? "" : ", ") + std::string(row.Value(i).value_or("NULL"));
  }
  return "(" + names + ")=(" + values + ")";
}

std::string ColumnDiffs(const TableVerifyPlan& plan, const CursorRows& s, const CursorRows& t) {
  std::string out;
  for (size_t i = 0; i < plan.source_columns.size(); ++i) {
    if (s.Value(i) == t.Value(i)) continue;
    std::string name = DisplayIdent(plan.source_columns[i]);
    if (plan.target_columns[i] != plan.source_columns[i]) {
      name += " (target " + DisplayIdent(plan.target_columns[i]) + ")";
    }
    out += fmt::format("{}column {}: source {} target {}", out.empty() ? "" : "; ", name,
                       Show(s.Value(i)), Show(t.Value(i)));
  }
  return out;
}

using Summary = std::map<int, std::pair<uint64_t, std::string>>;  // bucket -> count, hash sum

Summary ReadSummary(const PgResult& r, uint64_t& rows) {
  Summary out;
  for (int i = 0; r && i < PQntuples(r.get()); ++i) {
    uint64_t n = std::stoull(GetValue(r, i, 1).value_or("0"));
    out[std::stoi(GetValue(r, i, 0).value_or("0"))] = {n, GetValue(r, i, 2).value_or("")};
    rows += n;
  }
  return out;
}

Result<int64_t> BucketCount(const TableVerifyPlan& plan, const PgConnection& source,
                            const PgConnection& target) {
  int64_t estimate = 0;
  for (const auto* side : {&plan.source, &plan.target}) {
    if (!side->exists) continue;
    const auto& conn = side == &plan.source ? source : target;
    PGF_TRY(auto r, conn.Exec("estimating the size of " + side->from,
                              "SELECT greatest(reltuples, 0)::bigint FROM pg_class "
                              "WHERE oid = $1::regclass",
                              {side->from}));
    estimate =
        std::max(estimate, static_cast<int64_t>(std::stoll(GetValue(r, 0, 0).value_or("0"))));
  }
  return std::clamp(estimate / kPageRows + 1, kMinBuckets, kMaxBuckets);
}

}  // namespace

Result<TableVerifyResult> CompareTable(const TableVerifyPlan& plan, const PgConnection& source,
                                       const PgConnection& target, size_t list_limit) {
  TableVerifyResult out;
  const std::string what =
      fmt::format("verify: table {} -> {}", plan.source_name, plan.target_name);
  PGF_TRY(int64_t buckets, BucketCount(plan, source, target));
  PGF_TRY(auto sums, ExecBoth({&source, &target},
                              {SummarySql(plan.source, plan.key, buckets),
                               plan.target.exists ? SummarySql(plan.target, plan.key, buckets)
                                                  : std::string()},
                              what + ": hashing rows on the source and the target"));
  const Summary s = ReadSummary(sums[0], out.source_rows);
  const Summary t = ReadSummary(sums[1], out.target_rows);
  std::vector<int> differing;
  for (const auto& [b, v] : s) {
    auto it = t.find(b);
    if (it == t.end() || it->second != v) differing.push_back(b);
  }
  for (const auto& [b, v] : t) {
    if (!s.count(b)) differing.push_back(b);
  }
  if (differing.empty()) return out;
  std::sort(differing.begin(), differing.end());

  // Read back only the differing buckets (all when most differ), in the same order.
  std::string filter;
  if (static_cast<int64_t>(differing.size()) * 2 < buckets) {
    for (int b : differing) filter += (filter.empty() ? "" : ",") + std::to_string(b);
    filter = "b = ANY ('{" + filter + "}'::int[])";
  }
  CursorRows src(source, 0, what + ": reading the source rows of differing buckets");
  CursorRows tgt(target, 1, what + ": reading the target rows of differing buckets");
  PGF_TRY(src.Open(CursorSql(plan.source, plan.key, buckets, filter)));
  if (plan.target.exists) PGF_TRY(tgt.Open(CursorSql(plan.target, plan.key, buckets, filter)));
  auto list = [&](std::string line) {
    if (out.listing.size() < list_limit) out.listing.push_back(std::move(line));
  };
  PGF_TRY(bool has_s, src.Next());
  PGF_TRY(bool has_t, tgt.Next());
  uint64_t compared = 0;
  auto next_log = Clock::now() + kProgressEvery;
  while (has_s || has_t) {
    const int order = !has_t ? -1 : !has_s ? 1 : CompareRows(src, tgt);
    if (order < 0) {
      ++out.missing;
      list("missing in target: " + ShowKey(plan, src));
    } else if (order > 0) {
      ++out.unexpected;
      list("unexpected in target: " + ShowKey(plan, tgt));
    } else if (auto diffs = ColumnDiffs(plan, src, tgt); !diffs.empty()) {
      ++out.differing;
      list("differs: " + ShowKey(plan, src) + ": " + diffs);
    }
    if (order <= 0) {
      PGF_TRY(has_s, src.Next());
    }
    if (order >= 0) {
      PGF_TRY(has_t, tgt.Next());
    }
    ++compared;
    if (Clock::now() >= next_log) {
      spdlog::info("{}: {} rows of differing buckets compared so far", what, compared);
      next_log += kProgressEvery;
    }
  }
  PGF_TRY(src.Close());
  PGF_TRY(tgt.Close());
  // Bucket order means nothing to a reader: group the listing by kind instead.
  auto rank = [](const std::string& line) {
    return line.starts_with("missing") ? 0 : line.starts_with("unexpected") ? 1 : 2;
  };
  std::stable_sort(out.listing.begin(), out.listing.end(),
                   [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  return out;
}

}  // namespace pgfanout
