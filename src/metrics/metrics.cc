#include "src/metrics/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pgfanout {
namespace {

constexpr const char* kPrefix = "pgfanout_";

// Label values escape backslash, double quote and newline; help text the first and last.
std::string Escape(const std::string& text, bool quote) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelText(const Labels& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    out += (out.size() > 1 ? "," : "") + k + "=\"" + Escape(v, true) + "\"";
  }
  if (!extra.empty()) out += (out.size() > 1 ? "," : "") + extra;
  return out + "}";
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", int64_t(v));
  return fmt::format("{}", v);
}

void AtomicAdd(std::atomic<double>& a, double v) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
}

uint64_t Histogram::CumulativeCount(size_t i) const {
  uint64_t n = 0;
  for (size_t j = 0; j <= i && j <= bounds_.size(); ++j) {
    n += counts_[j].load(std::memory_order_relaxed);
  }
  return n;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> SizeBuckets() {
  return {1, 10, 50, 100, 200, 500, 1000, 5000, 10000, 100000};
}

MetricsRegistry::Family& MetricsRegistry::FamilyOf(const std::string& name, Kind kind,
                                                   const std::string& help) {
  auto [it, fresh] = families_.try_emplace(kPrefix + name, Family{.kind = kind, .help = help});
  (void)fresh;
  return it->second;
}

Counter& MetricsRegistry::CounterOf(const std::string& name, const std::string& help,
                                    const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyOf(name, Kind::kCounter, help).counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::GaugeOf(const std::string& name, const std::string& help,
                                const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyOf(name, Kind::kGauge, help).gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::HistogramOf(const std::string& name, const std::string& help,
                                        const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyOf(name, Kind::kHistogram, help).histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto it = std::back_inserter(out);
  for (const auto& [name, f] : families_) {
    const char* type = f.kind == Kind::kCounter ? "counter"
                       : f.kind == Kind::kGauge ? "gauge"
                                                : "histogram";
    fmt::format_to(it, "# HELP {} {}\n# TYPE {} {}\n", name, Escape(f.help, false), name, type);
    for (const auto& [labels, c] : f.counters) {
      fmt::format_to(it, "{}{} {}\n", name, LabelText(labels), c->value());
    }
    for (const auto& [labels, g] : f.gauges) {
      fmt::format_to(it, "{}{} {}\n", name, LabelText(labels), Number(g->value()));
    }
    for (const auto& [labels, h] : f.histograms) {
      const auto& bounds = h->bounds();
      for (size_t i = 0; i <= bounds.size(); ++i) {
        const std::string le =
            "le=\"" + (i < bounds.size() ? Number(bounds[i]) : std::string("+Inf")) + "\"";
        fmt::format_to(it, "{}_bucket{} {}\n", name, LabelText(labels, le), h->CumulativeCount(i));
      }
      fmt::format_to(it, "{}_sum{} {}\n", name, LabelText(labels), Number(h->sum()));
      fmt::format_to(it, "{}_count{} {}\n", name, LabelText(labels),
                     h->CumulativeCount(bounds.size()));
    }
  }
  return out;
}

std::vector<std::string> MetricsRegistry::Names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, f] : families_) out.push_back(name);
  return out;
}

}  // namespace pgfanout
