#include "src/pipeline/transaction_assembler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "src/core/failpoint.h"

namespace pgfanout {
namespace {

// A streamed transaction at least this large logs how long its move into the log took.
constexpr uint32_t kReportMoveAtEvents = 8192;

Error ProtocolError(std::string message) {
  return MakeError(ErrorKind::kProtocol, std::move(message));
}

std::optional<std::string> TenantOf(const std::vector<Datum>& row, int index) {
  if (index < 0 || static_cast<size_t>(index) >= row.size()) return std::nullopt;
  const Datum& d = row[static_cast<size_t>(index)];
  if (d.kind != ValueKind::kText) return std::nullopt;
  return d.text;
}

}  // namespace

TransactionAssembler::TransactionAssembler(EventLog& log, const std::vector<TableConfig>& tables)
    : log_(log), last_end_lsn_(log.DurableLsn()) {
  for (const auto& t : tables) tables_by_name_[t.QualifiedName()] = &t;
}

Result<const TransactionAssembler::RelationInfo*> TransactionAssembler::Lookup(
    RelationId id, char msg_type) const {
  auto it = relations_.find(id.value);
  if (it == relations_.end()) {
    return ProtocolError(
        fmt::format("pgoutput '{}' refers to relation {} before any Relation message described it",
                    msg_type, id.value));
  }
  return &it->second;
}

Result<void> TransactionAssembler::OnRelation(pgoutput::Relation&& rel) {
  auto schema = std::make_shared<TableSchema>();
  schema->relation_id = rel.relation_id;
  schema->schema_name = rel.namespace_name.empty() ? "pg_catalog" : std::move(rel.namespace_name);
  schema->table_name = std::move(rel.relation_name);
  schema->replica_identity = rel.replica_identity;
  schema->columns.reserve(rel.columns.size());
  for (auto& c : rel.columns) {
    schema->columns.push_back(ColumnSchema{.name = std::move(c.name),
                                           .type_oid = c.type_oid,
                                           .type_modifier = c.type_modifier,
                                           .part_of_key = (c.flags & 1) != 0});
  }
  RelationInfo info;
  auto table = tables_by_name_.find(schema->QualifiedName());
  info.tracked = table != tables_by_name_.end();
  if (info.tracked && schema->replica_identity == 'f' && !table->second->key.empty()) {
    // Under REPLICA IDENTITY FULL pgoutput flags every column as key; sinks that upsert
    // need the row's real identity (the primary key, or the config's `key:`).
    const auto& key = table->second->key;
    for (auto& c : schema->columns) {
      c.part_of_key = std::find(key.begin(), key.end(), c.name) != key.end();
    }
  }
  if (info.tracked && !table->second->tenant_column.empty()) {
    for (size_t i = 0; i < schema->columns.size(); ++i) {
      if (schema->columns[i].name == table->second->tenant_column) info.tenant_index = int(i);
    }
    if (info.tenant_index < 0) {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("table {} has no column {} (its tenant_column in the config)",
                                   schema->QualifiedName(), table->second->tenant_column));
    }
  }
  info.schema = std::move(schema);
  relations_[rel.relation_id.value] = std::move(info);
  return boost::outcome_v2::success();
}

Result<std::optional<ChangeEvent>> TransactionAssembler::MakeChange(pgoutput::Message&& message) {
  ChangeEvent ev;
  const RelationInfo* rel = nullptr;
  if (auto* m = std::get_if<pgoutput::Insert>(&message)) {
    PGF_TRY(rel, Lookup(m->relation_id, 'I'));
    ev.op = Op::kInsert;
    ev.new_row = std::move(m->new_tuple);
    ev.tenant = TenantOf(ev.new_row, rel->tenant_index);
  } else if (auto* m = std::get_if<pgoutput::Update>(&message)) {
    PGF_TRY(rel, Lookup(m->relation_id, 'U'));
    ev.op = Op::kUpdate;
    ev.new_row = std::move(m->new_tuple);
    ev.old_row = std::move(m->old_tuple);
    ev.old_is_key_only = m->old_kind == 'K';
    ev.tenant = TenantOf(ev.new_row, rel->tenant_index);
    // A key-only old row holds the tenant only when it is part of the key (else NULL).
    if (auto old = TenantOf(ev.old_row, rel->tenant_index); old && old != ev.tenant) {
      ev.old_tenant = std::move(old);
    }
  } else if (auto* m = std::get_if<pgoutput::Delete>(&message)) {
    PGF_TRY(rel, Lookup(m->relation_id, 'D'));
    ev.op = Op::kDelete;
    ev.old_row = std::move(m->old_tuple);
    ev.old_is_key_only = m->old_kind == 'K';
    ev.tenant = TenantOf(ev.old_row, rel->tenant_index);
  }
  if (rel == nullptr || !rel->tracked) return std::optional<ChangeEvent>();
  const size_t columns = rel->schema->columns.size();
  if ((!ev.new_row.empty() && ev.new_row.size() != columns) ||
      (!ev.old_row.empty() && ev.old_row.size() != columns)) {
    return ProtocolError(
        fmt::format("pgoutput change of {} has a tuple of {} columns, the "
                    "relation has {}",
                    rel->schema->QualifiedName(),
                    ev.new_row.empty() ? ev.old_row.size() : ev.new_row.size(), columns));
  }
  ev.table = rel->schema;
  return std::optional<ChangeEvent>(std::move(ev));
}

Result<void> TransactionAssembler::AddChange(Xid subxid, ChangeEvent&& event) {
  if (stream_xid_) {
    auto& stream = streams_[stream_xid_->value];
    return log_.SpillPut(*stream_xid_, stream.next_seq++, subxid, event);
  }
  if (!open_) return ProtocolError("pgoutput change outside a transaction");
  event.xid = open_xid_;
  event.id = EventId{open_->commit_lsn, static_cast<uint32_t>(open_->events.size())};
  open_->events.push_back(std::move(event));
  return boost::outcome_v2::success();
}

Result<void> TransactionAssembler::FinishStream(const pgoutput::StreamCommit& commit,
                                                std::vector<TransactionRecord>& ready) {
  auto it = streams_.find(commit.xid.value);
  if (AlreadyDurable(commit.commit_lsn)) {
    if (it != streams_.end()) streams_.erase(it);
    return log_.SpillDrop(commit.xid, commit.xid);
  }
  const int64_t commit_time = commit.commit_time + kPostgresEpochOffsetUs;
  const auto started = std::chrono::steady_clock::now();
  PGF_TRY(const uint32_t ordinal, log_.SpillCommit(commit.xid, commit.commit_lsn, commit_time));
  if (it != streams_.end()) streams_.erase(it);
  // The events are in the log already; this record only moves the durable position.
  ready.push_back(TransactionRecord{
      .commit_lsn = commit.commit_lsn, .end_lsn = commit.end_lsn, .written_ahead = ordinal});
  if (ordinal >= kReportMoveAtEvents) {
    spdlog::info("streamed transaction {} committed at {}: {} events moved into the log in {} ms",
                 commit.xid.value, commit.commit_lsn.ToString(), ordinal,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count());
  }
  last_end_lsn_ = commit.end_lsn;
  return boost::outcome_v2::success();
}

Result<void> TransactionAssembler::DiscardOpen() {
  open_.reset();
  stream_xid_.reset();
  for (const auto& [xid, stream] : streams_) PGF_TRY(log_.SpillDrop(Xid{xid}, Xid{xid}));
  streams_.clear();
  return boost::outcome_v2::success();
}

Result<void> TransactionAssembler::Apply(pgoutput::Message&& message,
                                         std::vector<TransactionRecord>& ready) {
  using namespace pgoutput;
  if (auto* m = std::get_if<Begin>(&message)) {
    if (open_) return ProtocolError("pgoutput Begin inside an open transaction");
    open_ = TransactionRecord{.commit_lsn = m->final_lsn};
    open_xid_ = m->xid;
    open_commit_time_ = m->commit_time + kPostgresEpochOffsetUs;
    return boost::outcome_v2::success();
  }
  if (auto* m = std::get_if<Commit>(&message)) {
    if (!open_) return ProtocolError("pgoutput Commit without Begin");
    if (m->commit_lsn != open_->commit_lsn) {
      return ProtocolError(fmt::format("pgoutput Commit at {} does not match Begin's {}",
                                       m->commit_lsn.ToString(), open_->commit_lsn.ToString()));
    }
    TransactionRecord tx = std::move(*open_);
    open_.reset();
    if (AlreadyDurable(tx.commit_lsn)) return boost::outcome_v2::success();
    tx.end_lsn = m->end_lsn;
    const int64_t commit_time = m->commit_time + kPostgresEpochOffsetUs;
    for (auto& ev : tx.events) ev.commit_time_us = commit_time;
    last_end_lsn_ = tx.end_lsn;
    ready.push_back(std::move(tx));
    return boost::outcome_v2::success();
  }
  if (auto* m = std::get_if<Relation>(&message)) return OnRelation(std::move(*m));
  if (auto* m = std::get_if<StreamStart>(&message)) {
    if (stream_xid_) return ProtocolError("pgoutput Stream Start inside a stream block");
    stream_xid_ = m->xid;
    streams_.try_emplace(m->xid.value);
    return boost::outcome_v2::success();
  }
  if (std::holds_alternative<StreamStop>(message)) {
    if (!stream_xid_) return ProtocolError("pgoutput Stream Stop without Stream Start");
    stream_xid_.reset();
    return FailpointHit("source.mid_stream");
  }
  if (auto* m = std::get_if<StreamAbort>(&message)) {
    if (m->xid == m->subxid) streams_.erase(m->xid.value);
    return log_.SpillDrop(m->xid, m->subxid);
  }
  if (auto* m = std::get_if<StreamCommit>(&message)) {
    if (stream_xid_) return ProtocolError("pgoutput Stream Commit inside a stream block");
    return FinishStream(*m, ready);
  }
  if (auto* m = std::get_if<Truncate>(&message)) {
    for (RelationId id : m->relation_ids) {
      PGF_TRY(auto* rel, Lookup(id, 'T'));
      if (!rel->tracked) continue;
      ChangeEvent ev{.op = Op::kTruncate, .table = rel->schema, .truncate_flags = m->options};
      PGF_TRY(AddChange(m->xid, std::move(ev)));
    }
    return boost::outcome_v2::success();
  }
  if (std::holds_alternative<Insert>(message) || std::holds_alternative<Update>(message) ||
      std::holds_alternative<Delete>(message)) {
    Xid subxid = std::visit(
        [](const auto& m) -> Xid {
          if constexpr (requires { m.xid; }) return m.xid;
          return Xid{};
        },
        message);
    PGF_TRY(auto ev, MakeChange(std::move(message)));
    if (!ev) return boost::outcome_v2::success();
    return AddChange(subxid, std::move(*ev));
  }
  // Origin, Type and Message carry nothing we deliver (yet): origin filtering and
  // watermarks build on them later.
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
