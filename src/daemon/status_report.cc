#include "src/daemon/status_report.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>

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
                       const std::vector<SinkRunner::Status>& sinks,
                       const StatusQuery& query) {
  const SlotView& slot = monitor.slot;
  json out;
  out["state"] = source.state;
  out["ready"] = source.state == "streaming" || source.state == "standby";
  // Leadership is the slot: only one walsender can stream it.
  out["role"] = source.state == "streaming" ? json("leader")
                : source.state == "standby" ? json("standby")
                                            : json(nullptr);
  out["confirm"] = config.source.confirm == SourceConfig::Confirm::kSinks ? "sinks" : "log";
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
  json partitions = json::array();
  for (const auto& c : monitor.partition_changes) {
    partitions.push_back({{"table", c.table},
                          {"partition", c.partition},
                          {"change", c.what},
                          {"seen_at", Iso(c.seen_at)}});
  }
  out["partition_changes"] = std::move(partitions);
  out["log"] = {
      {"durable_lsn", source.durable_lsn.ToString()},
      {"last_event", source.last_event ? json(source.last_event->ToString()) : json(nullptr)},
      {"size_bytes", monitor.log_bytes},
  };
  std::map<std::string, const SinkLag*> lag_of;
  for (const auto& l : monitor.sinks) lag_of[l.id] = &l;
  auto state_of = [](const SinkRunner::Status& st) {
    return st.stopped                ? "stopped"
           : st.paused               ? "paused"
           : !st.last_error.empty()  ? "retrying"
           : !st.waiting_for.empty() ? "waiting"
                                     : "running";
  };
  json counts = {{"running", 0}, {"waiting", 0}, {"retrying", 0}, {"stopped", 0}, {"paused", 0}};
  for (const auto& st : sinks) counts[state_of(st)] = counts[state_of(st)].get<size_t>() + 1;
  out["sink_states"] = std::move(counts);
  std::vector<const SinkLag*> behind;
  for (const auto& l : monitor.sinks) {
    if (l.events_behind > 0) behind.push_back(&l);
  }
  const size_t top = std::min<size_t>(behind.size(), 20);
  std::partial_sort(behind.begin(), behind.begin() + static_cast<std::ptrdiff_t>(top),
                    behind.end(), [](const SinkLag* a, const SinkLag* b) {
                      return a->seconds_behind > b->seconds_behind;
                    });
  json furthest = json::array();
  for (size_t i = 0; i < top; ++i) {
    furthest.push_back({{"id", behind[i]->id}, {"seconds_behind", behind[i]->seconds_behind}});
  }
  out["furthest_behind"] = std::move(furthest);
  json list = json::array();
  size_t matching = 0;
  const size_t first = (query.page - 1) * query.per_page;
  for (const auto& st : sinks) {
    if (query.sink && st.sink_id != *query.sink) continue;
    if (query.state && *query.state != state_of(st)) continue;
    const size_t index = matching++;
    if (index < first || index >= first + query.per_page) continue;
    const SinkConfig* sc = config.FindSink(st.sink_id);
    json j = {
        {"id", st.sink_id},
        {"type", sc ? std::string(sc->type()) : ""},
        {"tenants", sc ? sc->tenants : std::vector<std::string>{}},
        {"cursor", st.cursor ? json(st.cursor->ToString()) : json(nullptr)},
        {"events_delivered", st.events_delivered},
        {"batches", st.batches},
        {"state", state_of(st)},
        {"last_error", OrNull(st.last_error)},
        {"retry_at", st.retry_at ? json(Iso(*st.retry_at)) : json(nullptr)},
        {"waiting_for", OrNull(st.waiting_for)},
    };
    if (st.resnapshot) {
      const auto& r = *st.resnapshot;
      j["resnapshot"] = {{"tables", r.tables},
                         {"replace", r.replace},
                         {"requested_at", Iso(std::chrono::system_clock::time_point(
                                              std::chrono::milliseconds(r.requested_at_ms)))},
                         {"state", r.rounds == 0 && r.progress.empty() ? "queued" : "copying"},
                         {"rounds", r.rounds},
                         {"progress", OrNull(r.progress)},
                         // Its literals may be a tenant's values: only whether there is one.
                         {"limited_by_where", !r.where.empty()}};
    } else {
      j["resnapshot"] = nullptr;
    }
    j["last_resnapshot"] = OrNull(st.last_resnapshot);
    if (auto it = lag_of.find(st.sink_id); it != lag_of.end()) {
      j["events_behind"] = it->second->events_behind;
      j["events_behind_is_lower_bound"] = it->second->events_capped;
      j["bytes_behind"] = it->second->bytes_behind;
      j["seconds_behind"] = it->second->seconds_behind;
    }
    list.push_back(std::move(j));
  }
  out["sinks"] = std::move(list);
  out["sinks_matching"] = matching;
  out["page"] = query.page;
  out["per_page"] = query.per_page;
  return out.dump(2) + "\n";
}

Result<std::vector<std::pair<std::string, std::string>>> ParseQueryPairs(std::string_view query,
                                                                         std::string_view route) {
  auto decode = [](std::string_view text) -> std::optional<std::string> {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '+') {
        out.push_back(' ');
      } else if (text[i] == '%') {
        unsigned value = 0;
        if (i + 2 >= text.size()) return std::nullopt;
        auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
        if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
        out.push_back(static_cast<char>(value));
        i += 2;
      } else {
        out.push_back(text[i]);
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t at = 0; at < query.size();) {
    size_t end = query.find('&', at);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(at, end - at);
    at = end + 1;
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    auto value = decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!value) {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("{}: {}: expected a percent-encoded value", route, key));
    }
    out.emplace_back(std::string(key), std::move(*value));
  }
  return out;
}

Result<StatusQuery> ParseStatusQuery(std::string_view query) {
  StatusQuery q;
  auto number = [](const std::string& text, size_t min, size_t max) -> std::optional<size_t> {
    size_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
      return std::nullopt;
    }
    return v;
  };
  auto bad = [](std::string_view key, std::string_view expected) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("/status: {}: expected {}", key, expected));
  };
  PGF_TRY(auto pairs, ParseQueryPairs(query, "/status"));
  for (auto& [key, v] : pairs) {
    const std::optional<std::string> value = std::move(v);
    if (key == "sink") {
      q.sink = *value;
    } else if (key == "state") {
      if (*value != "stopped" && *value != "retrying" && *value != "waiting" &&
          *value != "running" && *value != "paused") {
        return bad(key, "stopped, retrying, waiting, paused or running");
      }
      q.state = *value;
    } else if (key == "page") {
      auto n = number(*value, 1, SIZE_MAX / 10001);
      if (!n) return bad(key, "a page number from 1");
      q.page = *n;
    } else if (key == "per_page") {
      auto n = number(*value, 1, 10000);
      if (!n) return bad(key, "a number from 1 to 10000");
      q.per_page = *n;
    } else {
      return bad(key, "one of sink, state, page, per_page");
    }
  }
  return q;
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
