#include "src/pipeline/slot_hold.h"

#include <algorithm>

namespace pgfanout {
namespace {

// What one sink lets the slot be confirmed to; nullopt: it holds nothing.
Result<std::optional<Lsn>> HoldOf(SinkRunner& runner, const EventLog& log,
                                  const std::optional<EventId>& last) {
  const SinkRunner::Status st = runner.status();
  if (st.finished) return std::optional<Lsn>();
  std::optional<EventId> cursor = st.cursor;
  if (!cursor && st.holds_after) return std::optional<Lsn>(st.holds_after->commit_lsn);
  if (!cursor) {
    PGF_TRY(auto stored, log.LoadCursor(runner.id()));
    // Not opened yet: what its destination holds is unknown, so it holds everything.
    if (!stored) return std::optional<Lsn>(Lsn());
    cursor = stored->applied;
  }
  if (st.idle) return std::optional<Lsn>();
  if (!last || !(*cursor < *last)) return std::optional<Lsn>();
  return std::optional<Lsn>(cursor->commit_lsn);
}

}  // namespace

Result<Lsn> SinksConfirmable(const std::vector<SinkRunner*>& runners, const EventLog& log,
                             Lsn durable, std::optional<EventId> last_event) {
  Lsn to = durable;
  for (auto* r : runners) {
    PGF_TRY(auto hold, HoldOf(*r, log, last_event));
    if (hold) to = std::min(to, *hold);
  }
  return to;
}

}  // namespace pgfanout
