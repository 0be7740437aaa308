#include "src/pipeline/ingest.h"

#include <fmt/format.h>

#include "checkpoints/append_rules.h"
#include "decoders/pgoutput/reader.h"
#include "decoders/wal2json/reader.h"

namespace pgfanout {
namespace {

// A group commit happens when the socket is drained, or earlier once this many events
// wait, so memory stays bounded under a firehose of small transactions.
constexpr size_t kMaxGroupEvents = 50'000;

}  // namespace

Ingest::Ingest(EventLog& log, const std::vector<TableConfig>& tables,
               std::function<void(const Appended&)> on_durable,
               const std::optional<wal2json::ReaderOptions>& wal2json)
    : log_(log),
      assembler_(log, tables),
      wal2json_(wal2json ? std::make_unique<wal2json::Reader>(*wal2json) : nullptr),
      on_durable_(std::move(on_durable)) {}

Ingest::~Ingest() = default;

Result<void> Ingest::DiscardOpen() {
  if (wal2json_) wal2json_->Reset();
  return assembler_.DiscardOpen();
}

bool Ingest::Idle() const { return assembler_.idle() && (!wal2json_ || wal2json_->idle()); }

void Ingest::SetMetrics(MetricsRegistry& metrics) {
  changes_decoded_ = &metrics.CounterOf(
      "changes_decoded_total",
      "Row changes (insert, update, delete, truncate) decoded from the stream, including those "
      "of transactions later rolled back");
  transactions_logged_ = &metrics.CounterOf("transactions_logged_total",
                                            "Committed transactions made durable in the event log");
  group_commits_ = &metrics.CounterOf(
      "log_group_commits_total", "Synced appends to the event log (each covers >= 1 transaction)");
  durable_lsn_ = &metrics.GaugeOf("event_log_durable_lsn",
                                  "End LSN of the last durable transaction, as a number");
}

Result<void> Ingest::Apply(pgoutput::Message&& message) {
  if (changes_decoded_) {
    const auto& m = message;
    if (std::holds_alternative<pgoutput::Insert>(m) ||
        std::holds_alternative<pgoutput::Update>(m) ||
        std::holds_alternative<pgoutput::Delete>(m) ||
        std::holds_alternative<pgoutput::Truncate>(m)) {
      changes_decoded_->Add();
    }
  }
  const size_t before = ready_.size();
  PGF_TRY(assembler_.Apply(std::move(message), ready_));
  for (size_t i = before; i < ready_.size(); ++i) ready_events_ += ready_[i].events.size();
  return boost::outcome_v2::success();
}

Result<void> Ingest::OnData(Lsn wal_start, std::string_view payload) {
  if (wal2json_) {
    decoded_.clear();
    auto read = wal2json_->Decode(payload, decoded_);
    if (!read) return read.error().Wrap("decoding WAL at " + wal_start.ToString());
    for (auto& m : decoded_) PGF_TRY(Apply(std::move(m)));
  } else {
    auto message = pgoutput::Decode(payload, assembler_.in_stream());
    if (!message) return message.error().Wrap("decoding WAL at " + wal_start.ToString());
    PGF_TRY(Apply(std::move(message).value()));
  }
  if (ready_events_ >= kMaxGroupEvents) PGF_TRY(Flush());
  return boost::outcome_v2::success();
}

Result<Lsn> Ingest::Flush(Lsn keepalive_lsn) {
  if (ready_.empty() && Idle() && keepalive_lsn > log_.DurableLsn()) {
    ready_.push_back(TransactionRecord{.commit_lsn = keepalive_lsn, .end_lsn = keepalive_lsn});
  }
  if (!ready_.empty()) {
    if (before_append_) PGF_TRY(before_append_(ready_));
    PGF_TRY(log_.Append(ready_));
    for (const auto& tx : ready_) {
      if (!tx.events.empty() || tx.commit_lsn != tx.end_lsn) ++transactions_logged_count_;
    }
    if (group_commits_) {
      group_commits_->Add();
      for (const auto& tx : ready_)
        transactions_logged_->Add(tx.events.empty() && tx.commit_lsn == tx.end_lsn ? 0 : 1);
      durable_lsn_->Set(static_cast<double>(log_.DurableLsn().value()));
    }
    if (on_durable_) {
      Appended& a = appended_;
      a.any = a.shared = a.every = false;
      a.tenants.clear();
      for (const auto& tx : ready_) {
        if (tx.written_ahead > 0) a.any = a.every = true;
        for (const auto& ev : tx.events) {
          a.any = true;
          const IndexBuckets b = BucketsOf(ev.op, ev.tenant, ev.old_tenant);
          a.shared |= b.shared;
          if (b.tenant) a.tenants.emplace_back(*b.tenant);
          if (b.old_tenant) a.tenants.emplace_back(*b.old_tenant);
        }
      }
      std::sort(a.tenants.begin(), a.tenants.end());
      a.tenants.erase(std::unique(a.tenants.begin(), a.tenants.end()), a.tenants.end());
      on_durable_(a);
    }
    ready_.clear();
    ready_events_ = 0;
  }
  return log_.DurableLsn();
}

}  // namespace pgfanout
