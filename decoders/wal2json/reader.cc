#include "decoders/wal2json/reader.h"

#include <fmt/format.h>

namespace pgfanout::wal2json {
namespace {

Error OrderError(Action action, std::string_view what) {
  return MakeError(ErrorKind::kDecode,
                   fmt::format("wal2json '{}' document: {}", static_cast<char>(action), what));
}

// pgoutput puts the (sub)transaction id into changes only inside a stream.
void SetXid(pgoutput::Message& m, Xid xid) {
  std::visit(
      [&](auto& v) {
        if constexpr (requires { v.xid; }) v.xid = xid;
      },
      m);
}

template <class T>
Result<T> Need(const std::optional<T>& field, Action action, const char* name) {
  if (!field) return OrderError(action, fmt::format("no \"{}\"", name));
  return *field;
}

}  // namespace

Reader::Reader(const ReaderOptions& options)
    : shapes_(options.tables), stream_threshold_bytes_(options.stream_threshold_bytes) {}

void Reader::Reset() {
  open_.reset();
  shapes_.ForgetAnnounced();
}

Result<void> Reader::OnBegin(const Document& doc) {
  if (open_) return OrderError(doc.action, "inside an open transaction");
  Open tx;
  PGF_TRY(tx.xid, Need(doc.xid, doc.action, "xid"));
  PGF_TRY(tx.commit_lsn, Need(doc.lsn, doc.action, "lsn"));
  PGF_TRY(tx.end_lsn, Need(doc.next_lsn, doc.action, "nextlsn"));
  PGF_TRY(tx.commit_time, Need(doc.commit_time_us, doc.action, "timestamp"));
  open_ = std::move(tx);
  return boost::outcome_v2::success();
}

Result<void> Reader::OnCommit(const Document& doc, std::vector<pgoutput::Message>& out) {
  if (!open_) return OrderError(doc.action, "without B");
  PGF_TRY(Xid xid, Need(doc.xid, doc.action, "xid"));
  PGF_TRY(Lsn lsn, Need(doc.lsn, doc.action, "lsn"));
  PGF_TRY(Lsn end_lsn, Need(doc.next_lsn, doc.action, "nextlsn"));
  PGF_TRY(int64_t commit_time, Need(doc.commit_time_us, doc.action, "timestamp"));
  Open& tx = *open_;
  if (xid != tx.xid || lsn != tx.commit_lsn) {
    return OrderError(doc.action,
                      fmt::format("for xid {} at {}, but B was xid {} at {}", xid.value,
                                  lsn.ToString(), tx.xid.value, tx.commit_lsn.ToString()));
  }
  if (tx.streaming) {
    if (tx.in_segment) out.emplace_back(pgoutput::StreamStop{});
    out.emplace_back(pgoutput::StreamCommit{
        .xid = xid, .commit_lsn = lsn, .end_lsn = end_lsn, .commit_time = commit_time});
  } else if (!tx.held.empty()) {
    out.emplace_back(
        pgoutput::Begin{.final_lsn = tx.commit_lsn, .commit_time = tx.commit_time, .xid = xid});
    for (auto& m : tx.held) out.push_back(std::move(m));
    out.emplace_back(pgoutput::Commit{
        .flags = 0, .commit_lsn = lsn, .end_lsn = end_lsn, .commit_time = commit_time});
  }
  // else: nothing for the tracked tables (DDL, other tables): pgoutput sends nothing either.
  open_.reset();
  return boost::outcome_v2::success();
}

void Reader::Add(std::vector<pgoutput::Message>& messages, size_t bytes,
                 std::vector<pgoutput::Message>& out) {
  Open& tx = *open_;
  if (!tx.streaming) {
    for (auto& m : messages) tx.held.push_back(std::move(m));
    tx.bytes += bytes;
    if (tx.bytes <= stream_threshold_bytes_) return;
    // Too large to hold: what is held becomes the first segment of a streamed transaction.
    tx.streaming = true;
    out.emplace_back(pgoutput::StreamStart{.xid = tx.xid, .first_segment = true});
    for (auto& m : tx.held) {
      SetXid(m, tx.xid);
      out.push_back(std::move(m));
    }
    out.emplace_back(pgoutput::StreamStop{});
    tx.held.clear();
    tx.held.shrink_to_fit();
    tx.bytes = 0;
    return;
  }
  if (!tx.in_segment) {
    out.emplace_back(pgoutput::StreamStart{.xid = tx.xid, .first_segment = false});
    tx.in_segment = true;
  }
  for (auto& m : messages) {
    SetXid(m, tx.xid);
    out.push_back(std::move(m));
  }
  tx.bytes += bytes;
  if (tx.bytes > stream_threshold_bytes_) {
    out.emplace_back(pgoutput::StreamStop{});
    tx.in_segment = false;
    tx.bytes = 0;
  }
}

Result<void> Reader::Decode(std::string_view document, std::vector<pgoutput::Message>& out) {
  PGF_TRY(Document doc, ParseDocument(document));
  switch (doc.action) {
    case Action::kBegin:
      return OnBegin(doc);
    case Action::kCommit:
      return OnCommit(doc, out);
    case Action::kMessage: {
      PGF_TRY(bool transactional, Need(doc.transactional, doc.action, "transactional"));
      PGF_TRY(Lsn lsn, Need(doc.lsn, doc.action, "lsn"));
      PGF_TRY(std::string prefix, Need(doc.prefix, doc.action, "prefix"));
      PGF_TRY(std::string content, Need(doc.content, doc.action, "content"));
      pgoutput::LogicalMessage m{.transactional = transactional,
                                 .lsn = lsn,
                                 .prefix = std::move(prefix),
                                 .content = std::move(content)};
      if (!transactional) {
        out.emplace_back(std::move(m));  // written at once, outside any transaction
        return boost::outcome_v2::success();
      }
      if (!open_) return OrderError(doc.action, "transactional, outside B ... C");
      scratch_.clear();
      scratch_.emplace_back(std::move(m));
      Add(scratch_, document.size(), out);
      return boost::outcome_v2::success();
    }
    default: {
      if (!open_) return OrderError(doc.action, "outside B ... C");
      scratch_.clear();
      PGF_TRY(shapes_.Translate(std::move(doc), scratch_));
      Add(scratch_, document.size(), out);
      return boost::outcome_v2::success();
    }
  }
}

}  // namespace pgfanout::wal2json
