#include "src/core/failpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace pgfanout {
namespace {

const char* Spec() {
  const char* spec = std::getenv("PGFANOUT_FAILPOINTS");
  return spec != nullptr && *spec != '\0' ? spec : nullptr;
}

}  // namespace

Result<std::vector<FailpointSpec>> ParseFailpoints(std::string_view spec) {
  std::vector<FailpointSpec> out;
  while (!spec.empty()) {
    auto comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    auto fail = [&](std::string_view why) {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("PGFANOUT_FAILPOINTS: '{}': {}", item, why));
    };
    auto eq = item.find('=');
    if (eq == std::string_view::npos) return fail("expected <name>=<action>[@<n>]");
    FailpointSpec p{.name = std::string(item.substr(0, eq))};
    std::string_view action = item.substr(eq + 1);
    if (auto at = action.find('@'); at != std::string_view::npos) {
      const std::string_view n = action.substr(at + 1);
      auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), p.fire_on);
      if (ec != std::errc() || end != n.data() + n.size() || p.fire_on < 1) {
        return fail("@<n> must be a whole number from 1");
      }
      action = action.substr(0, at);
    }
    if (action != "kill" && action != "abort" && action != "error") {
      return fail("unknown action (expected kill, abort or error)");
    }
    p.action = std::string(action);
    if (std::find(std::begin(kFailpoints), std::end(kFailpoints), p.name) == std::end(kFailpoints)) {
      return fail("unknown failpoint (see src/core/failpoint.h)");
    }
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::string> CheckFailpoints() {
  const char* spec = Spec();
  if (spec == nullptr) return std::string();
#ifdef PGFANOUT_WITH_FAILPOINTS
  PGF_TRY(ParseFailpoints(spec));
  return fmt::format(
      "PGFANOUT_FAILPOINTS={}: this process will kill itself or fail on purpose (a fault "
      "test); never set it in production",
      spec);
#else
  return std::string(
      "PGFANOUT_FAILPOINTS is set, but this build has no failpoints (meson -Dfailpoints): "
      "ignored");
#endif
}

#ifdef PGFANOUT_WITH_FAILPOINTS
namespace {

struct Point {
  FailpointSpec spec;
  int hits = 0;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Point, std::less<>> points;
};

// A value that does not parse leaves every failpoint off here; CheckFailpoints() makes
// the command refuse to start with it.
Registry* LoadRegistry() {
  const char* spec = Spec();
  if (spec == nullptr) return nullptr;
  auto parsed = ParseFailpoints(spec);
  if (!parsed) return nullptr;
  auto* reg = new Registry();  // lives for the process
  for (auto& p : parsed.value()) reg->points.emplace(p.name, Point{.spec = p});
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
  if (++it->second.hits != it->second.spec.fire_on) return boost::outcome_v2::success();
  if (it->second.spec.action == "kill") std::raise(SIGKILL);
  if (it->second.spec.action == "abort") std::abort();
  return MakeError(ErrorKind::kSink, fmt::format("failpoint {} fired", name));
}
#endif

}  // namespace pgfanout
