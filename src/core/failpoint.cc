#include "src/core/failpoint.h"

#include <fmt/format.h>

#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace pgfanout {
namespace {

struct Point {
  enum class Action { kError, kKill, kAbort };
  Action action = Action::kError;
  int fire_on = 1;
  int hits = 0;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Point, std::less<>> points;
};

Registry* LoadRegistry() {
  const char* spec = std::getenv("PGFANOUT_FAILPOINTS");
  if (spec == nullptr || *spec == '\0') return nullptr;
  auto* reg = new Registry();  // lives for the process
  std::string_view rest(spec);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    Point p;
    auto action = item.substr(eq + 1);
    if (auto at = action.find('@'); at != std::string_view::npos) {
      p.fire_on = std::atoi(std::string(action.substr(at + 1)).c_str());
      action = action.substr(0, at);
    }
    if (action == "kill") p.action = Point::Action::kKill;
    if (action == "abort") p.action = Point::Action::kAbort;
    reg->points.emplace(std::string(item.substr(0, eq)), p);
  }
  return reg;
}

Registry* const g_registry = LoadRegistry();

}  // namespace

Result<void> FailpointHit(std::string_view name) {
  if (g_registry == nullptr) [[likely]] {
    return boost::outcome_v2::success();
  }
  std::lock_guard lock(g_registry->mu);
  auto it = g_registry->points.find(name);
  if (it == g_registry->points.end()) return boost::outcome_v2::success();
  if (++it->second.hits != it->second.fire_on) return boost::outcome_v2::success();
  if (it->second.action == Point::Action::kKill) std::raise(SIGKILL);
  if (it->second.action == Point::Action::kAbort) std::abort();
  return MakeError(ErrorKind::kSink, fmt::format("failpoint {} fired", name));
}

}  // namespace pgfanout
