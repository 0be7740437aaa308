#include "src/pipeline/sink_open.h"

#include "checkpoints/meta_records.h"

namespace pgfanout {

Result<OpenedSink> OpenSinkAtCursor(Sink& sink, EventLog& log, const std::string& sink_id,
                                    const Lineage& lineage) {
  OpenedSink opened;
  PGF_TRY(opened.stored, log.LoadCursor(sink_id));
  const bool has_token = opened.stored && !opened.stored->token.empty();
  std::optional<meta::Baseline> baseline;
  if (!has_token) {
    PGF_TRY(baseline, meta::Load(log, meta::BaselineKey(sink_id)));
  }
  if (baseline && !baseline->token.empty()) {
    // Roll the destination back to how the first Open() found it: whatever is past that was
    // written without a cursor to show for it.
    SinkCursor at{.applied = opened.stored ? opened.stored->applied : EventId{},
                  .token = baseline->token};
    PGF_TRY(opened.theirs, sink.Open(at, lineage));
    return opened;
  }
  PGF_TRY(opened.theirs, sink.Open(opened.stored, lineage));
  if (!has_token) {
    if (auto token = sink.BaselineToken(); !token.empty()) {
      PGF_TRY(meta::Store(log, meta::BaselineKey(sink_id), meta::Baseline{token}));
    }
  }
  return opened;
}

}  // namespace pgfanout
