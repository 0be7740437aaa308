#include "src/daemon/registry_sinks.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <set>

#include "checkpoints/meta_records.h"

namespace pgfanout {
namespace {

// Two definitions of one sink that differ only in being paused go to the same destination.
bool SameDestination(SinkConfig a, SinkConfig b) {
  a.enabled = b.enabled = true;
  return a == b;
}

}  // namespace

RegistrySinks::RegistrySinks(const Config& config, EventLog& log, SinkFleet& fleet,
                             TryMake try_make)
    : config_(config),
      log_(log),
      fleet_(fleet),
      try_make_(std::move(try_make)),
      registry_(config.sink_registry) {}

Result<bool> RegistrySinks::Load() {
  if (!enabled()) return false;
  PGF_TRY(loaded_, registry_.Load(log_));
  if (loaded_ && !registry_.dropping().empty()) {
    for (const auto& id : registry_.dropping()) {
      spdlog::warn(
          "sink registry: sink {} was retiring when pgfanout stopped; its state is dropped now",
          id);
      PGF_TRY(meta::ForgetSink(log_, id));
    }
    registry_.dropping().clear();
    PGF_TRY(registry_.Store(log_));
  }
  return loaded_;
}

std::vector<SinkConfig> RegistrySinks::Definitions() {
  std::vector<SinkConfig> all = config_.sinks;
  if (!loaded_) return all;
  Resolve();
  running_.clear();
  for (const auto& [id, r] : retiring_) running_[id] = r.definition;
  for (const auto& [id, sc] : resolved_) running_.try_emplace(id, sc);
  for (const auto& [id, sc] : running_) all.push_back(sc);
  return all;
}

Result<void> RegistrySinks::Sync(const std::set<std::string>& held) {
  std::vector<SinkConfig> all = config_.sinks;
  std::map<std::string, SinkConfig> running;
  for (const auto& [id, r] : retiring_) running[id] = r.definition;
  for (const auto& [id, p] : pausing_) running.try_emplace(id, p.definition);
  for (const auto& [id, sc] : resolved_) {
    if (!held.count(id)) running.try_emplace(id, sc);
  }
  for (const auto& [id, sc] : running) all.push_back(sc);
  PGF_TRY(fleet_.Apply(all));
  running_ = std::move(running);
  return boost::outcome_v2::success();
}

Result<void> RegistrySinks::Drop(const std::set<std::string>& ids) {
  PGF_TRY(Sync(ids));  // stopped after their batch in flight
  for (const auto& id : ids) PGF_TRY(meta::ForgetSink(log_, id));
  return registry_.Store(log_);
}

SinkRunner* RegistrySinks::RunnerOf(const std::string& id) const {
  for (auto* r : fleet_.Runners()) {
    if (r->id() == id) return r;
  }
  return nullptr;
}

void RegistrySinks::Resolve() {
  SinkRegistry::Resolved resolved = registry_.Resolve(config_);
  std::map<std::string, SinkConfig> ok;
  for (auto& sc : resolved.sinks) {
    // A definition the fleet already runs was made before; only new ones are tried.
    auto it = running_.find(sc.id);
    if (it == running_.end() || !(it->second == sc)) {
      if (auto made = try_make_(sc); !made) {
        resolved.errors[sc.id] = fmt::format("registry: sink {}: {}", sc.id, made.error().message);
        continue;
      }
    }
    std::string id = sc.id;
    ok.emplace(std::move(id), std::move(sc));
  }
  Counts counts{.error = resolved.errors.size()};
  for (const auto& [id, sc] : ok) (sc.enabled ? counts.live : counts.paused)++;
  resolved_ = std::move(ok);
  std::lock_guard lock(mu_);
  for (const auto& [id, message] : resolved.errors) {
    auto before = errors_.find(id);
    if (before == errors_.end() || before->second != message) {
      spdlog::error("{} (the row makes no sink until it is fixed; other sinks go on)", message);
    }
  }
  errors_ = std::move(resolved.errors);
  counts_ = counts;
}

Result<const PgConnection*> RegistrySinks::Sql() {
  if (!sql_ || PQstatus(sql_->get()) != CONNECTION_OK) {
    const auto& src = config_.source;
    PGF_TRY(auto c,
            PgConnection::Connect(src.dsn, PgConnection::Mode::kNormal, "source", src.password));
    sql_.emplace(std::move(c));
  }
  return &*sql_;
}

Result<void> RegistrySinks::CheckTenantForms(const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    // A row changed is decoded afresh: its error, if any, is of the decoding.
    const auto* row = registry_.Find(id);
    if (!row || !row->error.empty()) continue;
    auto sink = InstantiateTemplate(config_, SinkRegistry::ToRegistryRow(*row));
    if (!sink) continue;  // shown by Resolve()
    PGF_TRY(auto sql, Sql());
    PGF_TRY(auto error, tenant_forms_.Check(config_, sink.value(), *sql));
    registry_.SetRowError(id, std::move(error));
  }
  return boost::outcome_v2::success();
}

Result<void> RegistrySinks::Connected(const PgConnection& sql) {
  if (!enabled() || loaded_) return boost::outcome_v2::success();
  // The first time: the registry as the table holds it now. A change committed since the
  // log's position arrives through the slot again and is applied again, in order: each
  // row change sets the whole row, so applying one twice leaves what it left once.
  PGF_TRY(auto table, ReadRegistryTable(config_.sink_registry, sql));
  std::vector<SinkRegistry::Row> rows;
  std::vector<std::string> ids;
  for (auto& t : table) {
    ids.push_back(t.sink_id);
    rows.push_back(DecodeRegistryRow(std::move(t.sink_id), std::move(t.template_name), t.tenants,
                                     t.params, t.enabled));
  }
  registry_.Seed(std::move(rows), log_.LastDurableEvent().value_or(EventId{}));
  PGF_TRY(CheckTenantForms(ids));
  PGF_TRY(registry_.Store(log_));
  loaded_ = true;
  Resolve();
  PGF_TRY(Sync());
  spdlog::info("sink registry {}: {} row(s) read, {} sink(s) started",
               config_.sink_registry.QualifiedName(), ids.size(), running_.size());
  return boost::outcome_v2::success();
}

Result<void> RegistrySinks::AfterAppend(const std::vector<TransactionRecord>& transactions) {
  if (!loaded_) return boost::outcome_v2::success();
  const SinkRegistryConfig& reg = config_.sink_registry;
  auto is_registry = [&](const EventLog::EventPeek& peek) {
    return peek.table && peek.table->table_name == reg.table &&
           peek.table->schema_name == reg.schema;
  };
  for (const auto& tx : transactions) {
    if (tx.written_ahead == 0) continue;
    std::vector<TransactionRecord> found(1);
    found[0].commit_lsn = tx.commit_lsn;
    EventId after{Lsn(tx.commit_lsn.value() - 1), UINT32_MAX};
    const EventId last{tx.commit_lsn, tx.written_ahead - 1};
    while (after < last) {
      PGF_TRY(auto read,
              log_.ReadFiltered(after, EventLog::ReadLimits{.max_scanned = 1 << 20}, is_registry));
      for (auto& ev : read.events) {
        if (!(last < ev.id)) found[0].events.push_back(std::move(ev));
      }
      if (!read.scanned_through) break;
      after = *read.scanned_through;
    }
    if (found[0].events.empty()) continue;
    spdlog::warn(
        "sink registry: {} change(s) came in a transaction larger than "
        "logical_decoding_work_mem, applied after it was logged: a sink they retire may have "
        "taken events after them; keep registry changes in smaller transactions",
        found[0].events.size());
    PGF_TRY(BeforeAppend(found));
  }
  return boost::outcome_v2::success();
}

Result<void> RegistrySinks::BeforeAppend(std::vector<TransactionRecord>& transactions) {
  if (!enabled()) return boost::outcome_v2::success();
  std::vector<ChangeEvent> events = registry_.Extract(transactions);
  if (events.empty() || !loaded_) return boost::outcome_v2::success();
  const std::map<std::string, SinkConfig> before = running_;
  const SinkRegistry::Delta delta = registry_.Apply(events);
  PGF_TRY(CheckTenantForms(delta.changed));
  Resolve();

  // Sinks this change retires: deleted rows, rows that now make no sink, rows whose sink
  // goes elsewhere. One that runs delivers up to the change first; the others go now.
  std::set<std::string> now;
  for (const auto& id : delta.changed) {
    if (retiring_.count(id)) continue;  // already retiring, at an earlier change
    auto run = before.find(id);
    auto res = resolved_.find(id);
    const bool retire = delta.deleted.count(id) || res == resolved_.end() ||
                        (run != before.end() && !SameDestination(run->second, res->second));
    if (!retire) continue;
    SinkRunner* runner = run == before.end() ? nullptr : RunnerOf(id);
    // Without a cursor its first copy runs or waits: that copy reads a snapshot taken after
    // the change, so it must not go on (nothing of before the change is owed to it).
    if (!runner || !run->second.enabled || !runner->status().cursor) {
      now.insert(id);
      continue;
    }
    const EventId end = delta.first.at(id);
    retiring_[id] =
        Retiring{.definition = run->second, .end = end, .since = std::chrono::steady_clock::now()};
    runner->EndAt(end);
    spdlog::info(
        "sink registry: sink {} {} at {}: it delivers what it has not before that, "
        "then stops and its state is dropped",
        id,
        !registry_.Find(id)      ? "deleted"
        : res == resolved_.end() ? "in error"
                                 : "moved",
        end.ToString());
  }
  // Sinks this change pauses deliver what they have not before it first, like retiring
  // ones: "paused at that position" (README), not wherever the runner happened to be.
  for (const auto& id : delta.changed) {
    if (retiring_.count(id) || now.count(id) || pausing_.count(id)) continue;
    auto run = before.find(id);
    auto res = resolved_.find(id);
    if (run == before.end() || res == resolved_.end()) continue;
    if (!run->second.enabled || res->second.enabled) continue;
    SinkRunner* runner = RunnerOf(id);
    if (!runner || !runner->status().cursor) continue;
    const EventId end = delta.first.at(id);
    pausing_[id] =
        Retiring{.definition = run->second, .end = end, .since = std::chrono::steady_clock::now()};
    runner->EndAt(end);
  }
  registry_.dropping().clear();
  for (const auto& [id, r] : retiring_) registry_.dropping().push_back(id);
  if (!now.empty()) PGF_TRY(Drop(now));
  PGF_TRY(registry_.Store(log_));
  PGF_TRY(Sync());
  for (const auto& id : delta.changed) {
    auto was = before.find(id);
    auto is = running_.find(id);
    if (now.count(id) && was != before.end()) {
      spdlog::info("sink registry: sink {} {} at {}: stopped, its state dropped", id,
                   registry_.Find(id) ? "changed" : "deleted", delta.first.at(id).ToString());
    }
    if (retiring_.count(id) || is == running_.end()) continue;
    if (was == before.end() || now.count(id)) {
      spdlog::info("sink registry: sink {} added at {}{}", id, delta.first.at(id).ToString(),
                   is->second.enabled ? ": copying its rows" : ", paused");
    } else if (was->second.enabled != is->second.enabled) {
      spdlog::info("sink registry: sink {} {} at {}", id,
                   is->second.enabled ? "resumed from its cursor" : "paused",
                   delta.first.at(id).ToString());
    }
  }
  return boost::outcome_v2::success();
}

Result<void> RegistrySinks::Reap() {
  if (retiring_.empty() && pausing_.empty()) return boost::outcome_v2::success();
  const auto now = std::chrono::steady_clock::now();
  // Paused sinks that delivered up to their pause: the paused definition replaces them
  // (a sink resumed meanwhile is restarted from its cursor: its runner took no more).
  std::set<std::string> paused;
  for (const auto& [id, p] : pausing_) {
    SinkRunner* runner = RunnerOf(id);
    if (!runner || runner->status().finished || now - p.since >= kDrainTimeout) {
      paused.insert(id);
    }
  }
  if (!paused.empty()) {
    for (const auto& id : paused) pausing_.erase(id);
    PGF_TRY(Sync(paused));
    PGF_TRY(Sync());
  }
  if (retiring_.empty()) return boost::outcome_v2::success();
  std::set<std::string> done;
  for (const auto& [id, r] : retiring_) {
    SinkRunner* runner = RunnerOf(id);
    const std::optional<SinkRunner::Status> st =
        runner ? std::optional(runner->status()) : std::nullopt;
    if (!st || st->finished) {
      spdlog::info("sink registry: sink {} delivered up to {}: stopped, its state dropped", id,
                   r.end.ToString());
    } else if (now - r.since >= kDrainTimeout) {
      spdlog::warn(
          "sink registry: sink {} had not delivered up to {} after {} s{}: stopped anyway, its "
          "state dropped",
          id, r.end.ToString(),
          std::chrono::duration_cast<std::chrono::seconds>(kDrainTimeout).count(),
          st->last_error.empty() ? "" : " (its last error: " + st->last_error + ")");
    } else {
      continue;
    }
    done.insert(id);
  }
  if (done.empty()) return boost::outcome_v2::success();
  for (const auto& id : done) retiring_.erase(id);
  registry_.dropping().clear();
  for (const auto& [id, r] : retiring_) registry_.dropping().push_back(id);
  PGF_TRY(Drop(done));
  // A sink that waited for the id (moved elsewhere, added again) starts now, as new.
  return Sync();
}

std::map<std::string, std::string> RegistrySinks::Errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

RegistrySinks::Counts RegistrySinks::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

}  // namespace pgfanout
