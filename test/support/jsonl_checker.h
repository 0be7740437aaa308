#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/core/event_id.h"

namespace pgfanout::testing {

// Reads a JSONL sink file and rebuilds, from its events alone, what each table must hold:
// inserts put rows, updates replace them (keeping values marked unchanged_toast), deletes
// remove them, truncates clear the table. Also checks the stream's own promises: every
// line parses, ids strictly increase (so there is no duplicate and no reordering).
class JsonlChecker {
 public:
  // `key_columns` per qualified table ("public.users" -> {"id"}).
  explicit JsonlChecker(std::map<std::string, std::vector<std::string>> key_columns)
      : key_columns_(std::move(key_columns)) {}

  // Replaces what was read with the file's content. False (and error()) on a bad line.
  bool Load(const std::string& path);

  size_t lines() const { return events_.size(); }
  const std::vector<nlohmann::json>& events() const { return events_; }
  // Empty when every id is strictly greater than the one before; else the first offence.
  const std::string& order_error() const { return order_error_; }
  const std::string& error() const { return error_; }

  // Rows of a table as the events say, keyed by the key columns' JSON text.
  const std::map<std::string, nlohmann::json>& Rows(const std::string& table) const;

  // Rows from the source, as `SELECT row_to_json(t)` text, keyed the same way.
  std::map<std::string, nlohmann::json> KeyRows(const std::string& table,
                                                const std::vector<std::string>& json_rows) const;

  // Human-readable difference between expected (source) and actual (sink) rows; empty
  // when equal. Lists at most a few keys.
  static std::string Diff(const std::map<std::string, nlohmann::json>& expected,
                          const std::map<std::string, nlohmann::json>& actual);

 private:
  std::string KeyOf(const std::string& table, const nlohmann::json& row) const;
  void Apply(const nlohmann::json& event);

  std::map<std::string, std::vector<std::string>> key_columns_;
  std::vector<nlohmann::json> events_;
  std::map<std::string, std::map<std::string, nlohmann::json>> tables_;
  std::string order_error_;
  std::string error_;
};

}  // namespace pgfanout::testing
