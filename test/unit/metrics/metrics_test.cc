#include "src/metrics/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace pgfanout {
namespace {

TEST(MetricsTest, RendersCountersGaugesWithHelpTypeAndEscapedLabels) {
  MetricsRegistry m;
  m.CounterOf("events_total", "Events, with \\ and\nnewline", {{"sink", "a\"b\\c\nd"}}).Add(3);
  m.CounterOf("events_total", "ignored: the first help wins", {{"sink", "plain"}}).Add();
  m.GaugeOf("lag_seconds", "Lag").Set(1.5);
  const std::string text = m.RenderPrometheus();
  EXPECT_NE(text.find("# HELP pgfanout_events_total Events, with \\\\ and\\nnewline\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE pgfanout_events_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_events_total{sink=\"a\\\"b\\\\c\\nd\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("pgfanout_events_total{sink=\"plain\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE pgfanout_lag_seconds gauge\npgfanout_lag_seconds 1.5\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(m.Names(), (std::vector<std::string>{"pgfanout_events_total", "pgfanout_lag_seconds"}));
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndEndWithInf) {
  MetricsRegistry m;
  Histogram& h = m.HistogramOf("apply_seconds", "Apply", {0.1, 1}, {{"sink", "s"}});
  for (double v : {0.05, 0.1, 0.5, 2.0, 3.0}) h.Observe(v);
  const std::string text = m.RenderPrometheus();
  EXPECT_NE(text.find("pgfanout_apply_seconds_bucket{sink=\"s\",le=\"0.1\"} 2\n"), std::string::npos)
      << text << "\n(le is inclusive: 0.1 counts in the 0.1 bucket)";
  EXPECT_NE(text.find("pgfanout_apply_seconds_bucket{sink=\"s\",le=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_apply_seconds_bucket{sink=\"s\",le=\"+Inf\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_apply_seconds_sum{sink=\"s\"} 5.65\n"), std::string::npos) << text;
  EXPECT_NE(text.find("pgfanout_apply_seconds_count{sink=\"s\"} 5\n"), std::string::npos);
}

TEST(MetricsTest, SeriesKeepTheirAddressAndCountEveryThreadsUpdates) {
  MetricsRegistry m;
  Counter& c = m.CounterOf("hits_total", "Hits");
  EXPECT_EQ(&c, &m.CounterOf("hits_total", "Hits")) << "one series per name and labels";
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.Add();
      // New series from other threads while counting: the registry's map changes.
      m.CounterOf("hits_total", "Hits", {{"t", "x"}}).Add();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
}

}  // namespace
}  // namespace pgfanout
