#include "src/sinks/discard/discard_sink.h"

#include <charconv>

namespace pgfanout {

Result<std::optional<TargetPosition>> DiscardSink::Open(const std::optional<SinkCursor>& stored,
                                                  const Lineage&) {
  events_ = 0;
  if (stored && !stored->token.empty()) {
    std::from_chars(stored->token.data(), stored->token.data() + stored->token.size(), events_);
  }
  return std::optional<TargetPosition>();
}

Result<std::string> DiscardSink::Write(std::span<const ChangeEvent> events) {
  events_ += events.size();
  return std::to_string(events_);
}

}  // namespace pgfanout
