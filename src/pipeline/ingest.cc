#include "src/pipeline/ingest.h"

#include <fmt/format.h>

#include "decoders/pgoutput/reader.h"

namespace pgfanout {
namespace {

// A group commit happens when the socket is drained, or earlier once this many events
// wait, so memory stays bounded under a firehose of small transactions.
constexpr size_t kMaxGroupEvents = 50'000;

}  // namespace

Ingest::Ingest(EventLog& log, const std::vector<TableConfig>& tables,
               std::function<void()> on_durable)
    : log_(log), assembler_(log, tables), on_durable_(std::move(on_durable)) {}

Result<void> Ingest::OnData(Lsn wal_start, std::string_view payload) {
  auto message = pgoutput::Decode(payload, assembler_.in_stream());
  if (!message) return message.error().Wrap("decoding WAL at " + wal_start.ToString());
  const size_t before = ready_.size();
  PGF_TRY(assembler_.Apply(std::move(message).value(), ready_));
  for (size_t i = before; i < ready_.size(); ++i) ready_events_ += ready_[i].events.size();
  if (ready_events_ >= kMaxGroupEvents) PGF_TRY(Flush());
  return boost::outcome_v2::success();
}

Result<Lsn> Ingest::Flush(Lsn keepalive_lsn) {
  if (ready_.empty() && assembler_.idle() && keepalive_lsn > log_.DurableLsn()) {
    ready_.push_back(TransactionRecord{.commit_lsn = keepalive_lsn, .end_lsn = keepalive_lsn});
  }
  if (!ready_.empty()) {
    PGF_TRY(log_.Append(ready_));
    ready_.clear();
    ready_events_ = 0;
    if (on_durable_) on_durable_();
  }
  return log_.DurableLsn();
}

}  // namespace pgfanout
