#include "src/pipeline/signal_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "src/pipeline/sink_registry.h"

namespace pgfanout {

Result<void> SignalQueue::Load(const EventLog& log) {
  PGF_TRY(auto stored, meta::Load(log, meta::SignalsKey()));
  if (stored) state_ = std::move(*stored);
  return boost::outcome_v2::success();
}

Result<void> SignalQueue::BeforeAppend(std::vector<TransactionRecord>& transactions,
                                       EventLog& log) {
  if (!enabled()) return boost::outcome_v2::success();
  bool changed = false;
  for (auto& ev : own_.Take(transactions, state_.applied)) {
    state_.applied = ev.id;
    changed = true;
    if (ev.op != Op::kInsert) continue;
    const TableSchema& t = *ev.table;
    auto text = [&](std::string_view column) -> std::optional<std::string> {
      const Datum* d = ValueOf(t, ev.new_row, column);
      return d && d->kind == ValueKind::kText ? std::optional<std::string>(d->text) : std::nullopt;
    };
    Request request{.id = ev.id,
                    .sink_id = text("sink_id").value_or(""),
                    .table = text("table_name"),
                    .replace = text("replace") != "f"};
    if (request.sink_id.empty()) {
      spdlog::warn("signal table {}.{}: a row without sink_id at {} is ignored", schema_, table_,
                   ev.id.ToString());
      continue;
    }
    spdlog::info("signal table: a copy of sink {}{} asked at {}", request.sink_id,
                 request.table ? " table " + *request.table : "", ev.id.ToString());
    state_.pending.push_back(std::move(request));
  }
  if (!changed) return boost::outcome_v2::success();
  return meta::Store(log, meta::SignalsKey(), state_);
}

Result<void> SignalQueue::Pump(EventLog& log, const std::function<Answer(const Request&)>& ask) {
  if (state_.pending.empty()) return boost::outcome_v2::success();
  std::set<std::string> busy;  // sinks whose earlier request waits: later ones wait too
  std::vector<Request> left;
  for (auto& request : state_.pending) {
    if (busy.count(request.sink_id)) {
      left.push_back(std::move(request));
      continue;
    }
    if (ask(request) == Answer::kBusy) {
      busy.insert(request.sink_id);
      left.push_back(std::move(request));
    }
  }
  const bool changed = left.size() != state_.pending.size();
  state_.pending = std::move(left);
  if (!changed) return boost::outcome_v2::success();
  return meta::Store(log, meta::SignalsKey(), state_);
}

}  // namespace pgfanout
