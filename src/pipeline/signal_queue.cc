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
  auto is_signal = [&](const ChangeEvent& ev) {
    if (!ev.table) return false;
    if (ev.table == seen_signal_) return true;
    if (ev.table == seen_other_) return false;
    const bool signal = ev.table->table_name == table_ && ev.table->schema_name == schema_;
    (signal ? seen_signal_ : seen_other_) = ev.table;
    return signal;
  };
  bool changed = false;
  for (auto& tx : transactions) {
    if (std::none_of(tx.events.begin(), tx.events.end(), is_signal)) continue;
    std::vector<ChangeEvent> kept;
    kept.reserve(tx.events.size());
    for (auto& ev : tx.events) {
      if (!is_signal(ev)) {
        kept.push_back(std::move(ev));
        continue;
      }
      if (!(state_.applied < ev.id)) continue;  // sent again after a restart: taken before
      state_.applied = ev.id;
      changed = true;
      if (ev.op != Op::kInsert) continue;
      const TableSchema& t = *ev.table;
      auto text = [&](std::string_view column) -> std::optional<std::string> {
        const Datum* d = ValueOf(t, ev.new_row, column);
        return d && d->kind == ValueKind::kText ? std::optional<std::string>(d->text)
                                                : std::nullopt;
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
    tx.events = std::move(kept);
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
