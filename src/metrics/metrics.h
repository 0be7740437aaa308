#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pgfanout {

// Labels of one series, in the order the family declares them: {{"sink", "tenant-7"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count. Lock-free; any thread.
class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Lock-free; any thread.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts of observations in fixed buckets (upper bounds, ascending), with their sum.
// Observe() is lock-free; a rendering may see a sum and counts from slightly different
// moments, which Prometheus tolerates.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative count of observations <= bounds()[i]; i == bounds().size() is +Inf.
  uint64_t CumulativeCount(size_t i) const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, +Inf last
  std::atomic<double> sum_{0};
};

// Buckets for latencies in seconds, 1 ms .. 60 s.
std::vector<double> LatencyBuckets();
// Buckets for sizes (events per batch), 1 .. 100k.
std::vector<double> SizeBuckets();

// The process's metrics, rendered in the Prometheus text format (version 0.0.4) by
// /metrics. Series are created on first use and live as long as the registry; the
// references returned stay valid, so hot paths look a series up once and keep it.
// Every name gets the prefix "pgfanout_". Thread-safe.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // `name` without the prefix; one `help` and one kind per name (the first call's).
  Counter& CounterOf(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GaugeOf(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& HistogramOf(const std::string& name, const std::string& help,
                         const std::vector<double>& bounds, const Labels& labels = {});

  std::string RenderPrometheus() const;
  // The names of every family, prefixed, sorted (for documentation and tests).
  std::vector<std::string> Names() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyOf(const std::string& name, Kind kind, const std::string& help);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // by prefixed name
};

}  // namespace pgfanout
