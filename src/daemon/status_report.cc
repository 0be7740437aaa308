#include "src/daemon/status_report.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace pgfanout {
namespace {

using nlohmann::json;

std::string Iso(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(secs), ms % 1000);
}

json OrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

}  // namespace

std::string StatusJson(const Config& config, const SourceState& source,
                       const MonitorSnapshot& monitor,
                       const std::vector<SinkRunner::Status>& sinks) {
  const SlotView& slot = monitor.slot;
  json out;
  out["state"] = source.state;
  out["ready"] = source.state == "streaming";
  out["reason"] = OrNull(source.reason);
  out["source"] = {
      {"system_id", OrNull(source.system_id)},
      {"timeline", source.timeline},
      {"slot", config.source.slot},
      {"publication", config.source.publication},
      {"received_lsn", source.received_lsn.ToString()},
      {"confirmed_lsn", source.reported_flush_lsn.ToString()},
      {"reconnects", source.reconnects},
      {"last_error", OrNull(source.last_error)},
      {"retry_at", source.retry_at ? json(Iso(*source.retry_at)) : json(nullptr)},
  };
  json s = {{"read", slot.read}, {"error", OrNull(slot.error)}};
  if (slot.read) {
    s["checked_at"] = Iso(slot.checked_at);
    s["exists"] = slot.exists;
  }
  if (slot.exists) {
    s["confirmed_flush_lsn"] = OrNull(slot.confirmed_flush_lsn);
    s["restart_lsn"] = OrNull(slot.restart_lsn);
    s["wal_status"] = OrNull(slot.wal_status);
    s["active_pid"] = slot.active_pid ? json(*slot.active_pid) : json(nullptr);
    s["server_lsn"] = OrNull(slot.server_lsn);
    s["retained_wal_bytes"] = slot.retained_wal_bytes;
    s["safe_wal_size"] = slot.safe_wal_size ? json(*slot.safe_wal_size) : json(nullptr);
  }
  out["slot"] = std::move(s);
  out["log"] = {
      {"durable_lsn", source.durable_lsn.ToString()},
      {"last_event", source.last_event ? json(source.last_event->ToString()) : json(nullptr)},
      {"size_bytes", monitor.log_bytes},
  };
  std::map<std::string, const SinkLag*> lag_of;
  for (const auto& l : monitor.sinks) lag_of[l.id] = &l;
  json list = json::array();
  for (const auto& st : sinks) {
    const SinkConfig* sc = config.FindSink(st.sink_id);
    json j = {
        {"id", st.sink_id},
        {"type", sc ? sc->type : ""},
        {"tenants", sc ? sc->tenants : std::vector<std::string>{}},
        {"cursor", st.cursor ? json(st.cursor->ToString()) : json(nullptr)},
        {"events_delivered", st.events_delivered},
        {"batches", st.batches},
        {"state", st.stopped                 ? "stopped"
                  : !st.last_error.empty()   ? "retrying"
                                             : "running"},
        {"last_error", OrNull(st.last_error)},
        {"retry_at", st.retry_at ? json(Iso(*st.retry_at)) : json(nullptr)},
    };
    if (auto it = lag_of.find(st.sink_id); it != lag_of.end()) {
      j["events_behind"] = it->second->events_behind;
      j["events_behind_is_lower_bound"] = it->second->events_capped;
      j["bytes_behind"] = it->second->bytes_behind;
      j["seconds_behind"] = it->second->seconds_behind;
    }
    list.push_back(std::move(j));
  }
  out["sinks"] = std::move(list);
  return out.dump(2) + "\n";
}

std::string LagHistoryJson(const std::map<std::string, std::vector<LagPoint>>& history,
                           std::chrono::milliseconds interval) {
  json sinks = json::object();
  for (const auto& [id, points] : history) {
    json rows = json::array();
    for (const auto& p : points) {
      rows.push_back({p.unix_ms, p.seconds_behind, p.events_behind, p.bytes_behind});
    }
    sinks[id] = std::move(rows);
  }
  return json{{"interval_ms", interval.count()},
              {"columns", {"unix_ms", "seconds_behind", "events_behind", "bytes_behind"}},
              {"sinks", std::move(sinks)}}
             .dump();
}

}  // namespace pgfanout
