#include "test/faults/checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pgfanout::faults {
namespace {

using Key = std::pair<std::string, int64_t>;

constexpr size_t kMaxExamples = 5;

void Note(SinkFindings& f, const std::string& what) {
  if (f.examples.size() < kMaxExamples) f.examples.push_back(what);
}

std::string DeliveryText(const Delivery& d) {
  return fmt::format("{} {} {}/{}{}", d.table == Delivery::Table::kLedger ? "ledger" : "accounts",
                     d.op, d.tenant, d.key,
                     d.table == Delivery::Table::kAccounts ? fmt::format(" v{}", d.version) : "");
}

// What committed, settled against the source.
struct Truth {
  std::set<Key> inserted;  // ledger rows of committed ops
  std::set<Key> deleted;   // ledger rows removed by committed ops
};

void CheckRaw(const SinkView& view, const Truth& truth, const TableState& source,
              SinkFindings& f) {
  auto wanted = [&](const std::string& tenant) {
    return view.tenants.empty() || view.tenants.count(tenant) > 0;
  };
  std::set<Key> ledger_inserts, ledger_deletes;
  std::map<Key, int64_t> newest_version;
  std::map<Key, std::set<int64_t>> seen_versions;
  bool have_last = false;  // not an optional: GCC 12 warns it may be read uninitialised
  std::pair<uint64_t, uint32_t> last_id{0, 0};
  std::set<std::pair<uint64_t, uint32_t>> seen_ids;
  for (const auto& d : *view.deliveries) {
    ++f.delivered;
    Key k{d.tenant, d.key};
    // The same event again: a duplicate (an offence where the sink promises once), and
    // nothing else: a resent batch is not also out of order.
    if (d.id && !seen_ids.insert(*d.id).second) {
      ++f.duplicated_raw;
      Note(f, "received twice: " + DeliveryText(d));
      continue;
    }
    // Commit order across keys: a transaction delivered after a later one's changes.
    if (view.commit_order && d.id) {
      if (have_last && *d.id <= last_id) {
        ++f.order_violations;
        Note(f, fmt::format("{} (id {:X}/{:X}#{}) after id {:X}/{:X}#{}", DeliveryText(d),
                            d.id->first >> 32, d.id->first & 0xffffffff, d.id->second,
                            last_id.first >> 32, last_id.first & 0xffffffff, last_id.second));
      }
      if (!have_last || last_id < *d.id) last_id = *d.id;
      have_last = true;
    }
    if (!wanted(d.tenant)) {
      ++f.unexpected;
      Note(f, "another tenant's change: " + DeliveryText(d));
      continue;
    }
    if (d.table == Delivery::Table::kLedger) {
      if (d.op == 'd') {
        if (truth.deleted.count(k) == 0) {
          ++f.unexpected;
          Note(f, "a delete nobody committed: " + DeliveryText(d));
        } else if (!ledger_deletes.insert(k).second) {
          ++f.duplicated_raw;
          Note(f, "received twice: " + DeliveryText(d));
        } else if (ledger_inserts.count(k) == 0 && !view.compacts) {
          ++f.order_violations;
          Note(f, "delete before its insert: " + DeliveryText(d));
        }
        continue;
      }
      if (truth.inserted.count(k) == 0) {
        ++f.unexpected;
        Note(f, "an insert nobody committed: " + DeliveryText(d));
      } else if (!ledger_inserts.insert(k).second || d.op == 'u') {
        ++f.duplicated_raw;  // ledger rows are never updated at the source: a re-apply
        Note(f, "received twice: " + DeliveryText(d));
      } else if (ledger_deletes.count(k) > 0) {
        ++f.order_violations;
        Note(f, "insert after its delete: " + DeliveryText(d));
      }
      continue;
    }
    if (d.op == 'i' && d.version == 0) continue;  // the seed row, copied by a backfill
    auto src = source.accounts.find(k);
    if (src == source.accounts.end() || d.version > src->second.first || d.version <= 0) {
      ++f.unexpected;
      Note(f, "a version nobody committed: " + DeliveryText(d));
      continue;
    }
    // A version applied again (a row sink's audit has no event ids) is a duplicate only;
    // a version older than one already seen, and not seen itself, is out of order.
    if (!seen_versions[k].insert(d.version).second) {
      ++f.duplicated_raw;
      Note(f, "received twice: " + DeliveryText(d));
      continue;
    }
    auto& newest = newest_version[k];
    if (d.version < newest) {
      ++f.order_violations;
      Note(f, fmt::format("{} after v{}", DeliveryText(d), newest));
    }
    newest = std::max(newest, d.version);
  }
  if (view.compacts) return;
  for (const auto& k : truth.inserted) {
    if (wanted(k.first) && ledger_inserts.count(k) == 0) {
      ++f.lost;
      Note(f, fmt::format("ledger insert {}/{} never arrived", k.first, k.second));
    }
  }
  for (const auto& k : truth.deleted) {
    if (wanted(k.first) && ledger_deletes.count(k) == 0) {
      ++f.lost;
      Note(f, fmt::format("ledger delete {}/{} never arrived", k.first, k.second));
    }
  }
  for (const auto& [k, vb] : source.accounts) {
    if (!wanted(k.first)) continue;
    const auto& seen = seen_versions[k];
    for (int64_t v = 1; v <= vb.first; ++v) {
      if (seen.count(v) == 0) {
        ++f.lost;
        Note(f, fmt::format("accounts {}/{} v{} never arrived", k.first, k.second, v));
      }
    }
  }
}

void CheckRows(const SinkView& view, const Truth& truth, const TableState& source,
               SinkFindings& f) {
  auto wanted = [&](const std::string& tenant) {
    return view.tenants.empty() || view.tenants.count(tenant) > 0;
  };
  const TableState& rows = *view.rows;
  // Ledger deletes the sink applied (from its raw deliveries, when it has them).
  std::set<Key> applied_deletes;
  if (view.deliveries) {
    for (const auto& d : *view.deliveries) {
      if (d.table == Delivery::Table::kLedger && d.op == 'd') {
        applied_deletes.insert({d.tenant, d.key});
      }
    }
  }
  for (const auto& k : source.ledger) {
    if (wanted(k.first) && rows.ledger.count(k) == 0) {
      ++f.lost;
      Note(f, fmt::format("ledger row {}/{} missing", k.first, k.second));
    }
  }
  for (const auto& k : rows.ledger) {
    if (source.ledger.count(k) > 0 && wanted(k.first)) continue;
    if (truth.deleted.count(k) > 0 && wanted(k.first)) {
      // Back after the sink applied its delete: applied twice. Never deleted: the delete
      // was lost (a halt or a gap), which is not a duplicate.
      if (!view.deliveries || applied_deletes.count(k) > 0) {
        ++f.duplicated_effect;
        Note(f, fmt::format("ledger row {}/{} deleted at the source is back", k.first, k.second));
      } else {
        ++f.lost;
        Note(f, fmt::format("ledger delete {}/{} never applied", k.first, k.second));
      }
    } else {
      ++f.unexpected;
      Note(f, fmt::format("ledger row {}/{} should not be here", k.first, k.second));
    }
  }
  for (const auto& [k, vb] : source.accounts) {
    if (!wanted(k.first)) continue;
    auto it = rows.accounts.find(k);
    if (it == rows.accounts.end() || it->second.first < vb.first) {
      ++f.lost;
      Note(f, fmt::format("accounts {}/{} at v{}, source at v{}", k.first, k.second,
                          it == rows.accounts.end() ? -1 : it->second.first, vb.first));
    } else if (it->second.first > vb.first) {
      ++f.unexpected;
      Note(f, fmt::format("accounts {}/{} at v{}, ahead of the source's v{}", k.first,
                          k.second, it->second.first, vb.first));
    } else if (it->second.second != vb.second) {
      ++f.duplicated_effect;
      Note(f, fmt::format("accounts {}/{} balance {} != source {}", k.first, k.second,
                          it->second.second, vb.second));
    }
  }
  for (const auto& [k, vb] : rows.accounts) {
    if (!wanted(k.first) || source.accounts.count(k) == 0) {
      ++f.unexpected;
      Note(f, fmt::format("accounts row {}/{} should not be here", k.first, k.second));
    }
  }
}

std::string Mib(int64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

}  // namespace

Report Check(const std::string& scenario, const std::vector<Op>& history,
             const TableState& source, const std::vector<SinkView>& sinks) {
  Report r;
  r.scenario = scenario;
  Truth truth;
  for (const auto& op : history) {
    ++r.attempted;
    Key k{op.tenant, op.op_id};
    bool committed = op.outcome == Outcome::kCommitted;
    if (op.outcome == Outcome::kFailed) ++r.failed;
    if (op.outcome == Outcome::kUnknown) {
      ++r.unknown;
      // Only known-committed rows are ever deleted, so an unknown op committed exactly
      // when its ledger row is at the source.
      committed = source.ledger.count(k) > 0;
      if (committed) ++r.unknown_committed;
    }
    if (!committed) continue;
    ++r.committed;
    truth.inserted.insert(k);
    if (op.deletes_op != 0) truth.deleted.insert({op.tenant, op.deletes_op});
  }
  for (const auto& view : sinks) {
    SinkFindings f;
    f.name = view.name;
    f.exactly_once = view.exactly_once;
    if (view.deliveries) CheckRaw(view, truth, source, f);
    if (view.rows) CheckRows(view, truth, source, f);
    r.sinks.push_back(std::move(f));
  }
  return r;
}

int64_t Sum(const std::vector<SinkFindings>& sinks, int64_t SinkFindings::*field) {
  int64_t n = 0;
  for (const auto& s : sinks) n += s.*field;
  return n;
}

int64_t Report::Lost() const { return Sum(sinks, &SinkFindings::lost); }
int64_t Report::DuplicatedEffect() const { return Sum(sinks, &SinkFindings::duplicated_effect); }
int64_t Report::DuplicatedRaw() const { return Sum(sinks, &SinkFindings::duplicated_raw); }
int64_t Report::DuplicatedOnce() const {
  int64_t n = 0;
  for (const auto& s : sinks) n += s.exactly_once ? s.duplicated_raw : 0;
  return n;
}
int64_t Report::Unexpected() const { return Sum(sinks, &SinkFindings::unexpected); }
int64_t Report::OrderViolations() const { return Sum(sinks, &SinkFindings::order_violations); }

double Report::RecoveryPercentile(double p) const {
  if (recovery_s.empty()) return -1;
  auto v = recovery_s;
  std::sort(v.begin(), v.end());
  auto at = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(at, v.size() - 1)];
}

std::string Report::ToText() const {
  std::string out = fmt::format("== {} ({:.0f} s, {} faults injected)\n", scenario, seconds, faults);
  out += fmt::format(
      "   transactions: attempted {}, committed {}, failed {}, unknown {} (of which "
      "committed {})\n",
      attempted, committed, failed, unknown, unknown_committed);
  for (const auto& s : sinks) {
    out += fmt::format(
        "   sink {:<12} delivered {:>7}  lost {}  duplicated raw {} / effect {}  "
        "unexpected {}  order violations {}\n",
        s.name, s.delivered, s.lost, s.duplicated_raw, s.duplicated_effect, s.unexpected,
        s.order_violations);
    for (const auto& e : s.examples) out += "      e.g. " + e + "\n";
  }
  out += fmt::format(
      "   recovery p50 {} p99 {} (measured {}, cut short by the next fault {}); largest "
      "replay window {}; peak retained WAL {}; peak RSS {}\n",
      recovery_s.empty() ? "-" : fmt::format("{:.2f} s", RecoveryPercentile(0.5)),
      recovery_s.empty() ? "-" : fmt::format("{:.2f} s", RecoveryPercentile(0.99)),
      recovery_s.size(), recoveries_censored, Mib(max_replay_window_bytes),
      Mib(peak_retained_wal_bytes), Mib(peak_rss_bytes));
  if (!notes.empty()) out += "   " + notes + "\n";
  out += fmt::format("   valid: {}\n", Valid() ? "yes" : "NO");
  return out;
}

std::string Report::MarkdownHeader() {
  return "| scenario | faults | committed | unknown | lost | dup. effect | dup. raw | "
         "unexpected | order viol. | recovery p50 / p99 | replay window | peak retained WAL | "
         "peak RSS | valid |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
}

std::string Report::ToMarkdownRow() const {
  return fmt::format(
      "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", scenario,
      faults, committed, unknown, Lost(), DuplicatedEffect(), DuplicatedRaw(), Unexpected(),
      OrderViolations(),
      recovery_s.empty()
          ? std::string("-")
          : fmt::format("{:.2f} s / {:.2f} s", RecoveryPercentile(0.5), RecoveryPercentile(0.99)),
      Mib(max_replay_window_bytes), Mib(peak_retained_wal_bytes), Mib(peak_rss_bytes),
      Valid() ? "yes" : "**no**");
}

std::string Report::CsvHeader() {
  return "scenario,faults,committed,unknown,lost,duplicated_effect,duplicated_raw,"
         "duplicated_once,unexpected,order_violations,recovery_p50_s,recovery_p99_s,"
         "recoveries,recoveries_censored,replay_window_bytes,peak_retained_wal_bytes,"
         "peak_rss_bytes,seconds,valid,notes\n";
}

std::string Report::ToCsvRow() const {
  auto quoted = [](const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
      if (c == '"') out += '"';
      out += c == '\n' ? ' ' : c;
    }
    return out + "\"";
  };
  auto seconds_or_empty = [&](double p) {
    return recovery_s.empty() ? std::string() : fmt::format("{:.3f}", RecoveryPercentile(p));
  };
  return fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.1f},{},{}\n",
                     quoted(scenario), faults, committed, unknown, Lost(), DuplicatedEffect(),
                     DuplicatedRaw(), DuplicatedOnce(), Unexpected(), OrderViolations(),
                     seconds_or_empty(0.5), seconds_or_empty(0.99), recovery_s.size(),
                     recoveries_censored, max_replay_window_bytes, peak_retained_wal_bytes,
                     peak_rss_bytes, seconds, Valid() ? "yes" : "no", quoted(notes));
}

}  // namespace pgfanout::faults
