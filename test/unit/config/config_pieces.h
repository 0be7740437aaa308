#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "src/config/config.h"

namespace pgfanout::config_test {

// Pieces of a valid config, so each error case changes one thing. Line numbers in the
// expected messages count from the first line of the concatenated text.
inline constexpr const char* kSource =  // lines 1-2
    "source:\n"
    "  dsn: \"host=db\"\n";
inline constexpr const char* kTables =  // 4 lines
    "tables:\n"
    "  - name: users\n"
    "    tenant_column: tenant_id\n"
    "  - name: billing.invoices\n";
inline constexpr const char* kSinks =  // 5 lines
    "sinks:\n"
    "  - id: out\n"
    "    type: jsonl\n"
    "    tenants: [\"7\"]\n"
    "    path: out/7.jsonl\n";

inline std::string Cat(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) out += p;
  return out;
}

// The first sink of kSinks with `extra` lines added to it (from line 12 on when it follows
// kSource and kTables).
inline std::string SinkWith(const std::string& extra) { return std::string(kSinks) + extra; }

inline Config MustParse(const std::string& yaml) {
  auto config = ParseConfig(yaml, "cfg.yaml");
  EXPECT_TRUE(config.has_value()) << config.error().message;
  return config.has_value() ? std::move(config).value() : Config{};
}

// A config with one postgres sink whose tables: list is `mapping` (lines from 13 on).
inline std::string PostgresSink(const std::string& mapping, const char* tenants = "[\"7\"]") {
  return Cat({kSource, kTables,
              "sinks:\n"
              "  - id: db7\n"
              "    type: postgres\n"
              "    tenants: ",
              tenants,
              "\n"
              "    dsn: \"host=t7\"\n"
              "    tables:\n",
              mapping});
}

}  // namespace pgfanout::config_test
