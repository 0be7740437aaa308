#include "test/support/jsonl_checker.h"

#include <fmt/format.h>

#include <fstream>
#include <optional>

namespace pgfanout::testing {

bool JsonlChecker::Load(const std::string& path) {
  events_.clear();
  tables_.clear();
  order_error_.clear();
  error_.clear();
  std::ifstream in(path);
  std::string line;
  std::optional<EventId> last;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    nlohmann::json ev = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (ev.is_discarded() || !ev.contains("id")) {
      error_ = fmt::format("line {} is not a JSON event: {}", n, line.substr(0, 200));
      return false;
    }
    auto id = EventId::Parse(ev["id"].get<std::string>());
    if (!id) {
      error_ = fmt::format("line {}: bad id {}", n, ev["id"].dump());
      return false;
    }
    if (last && !(*last < *id) && order_error_.empty()) {
      order_error_ =
          fmt::format("line {}: id {} does not follow {}", n, id->ToString(), last->ToString());
    }
    last = id;
    Apply(ev);
    events_.push_back(std::move(ev));
  }
  return true;
}

std::string JsonlChecker::KeyOf(const std::string& table, const nlohmann::json& row) const {
  nlohmann::json key = nlohmann::json::object();
  auto it = key_columns_.find(table);
  if (it == key_columns_.end()) return row.dump();
  for (const auto& col : it->second) {
    key[col] = row.contains(col) ? row.at(col) : nlohmann::json();
  }
  return key.dump();
}

void JsonlChecker::Apply(const nlohmann::json& ev) {
  const std::string table = ev["schema"].get<std::string>() + "." + ev["table"].get<std::string>();
  auto& rows = tables_[table];
  const std::string op = ev["op"];
  if (op == "truncate") {
    rows.clear();
    return;
  }
  if (op == "delete") {
    rows.erase(KeyOf(table, ev["old"].is_null() ? ev["key"] : ev["old"]));
    return;
  }
  nlohmann::json row = ev["new"];
  const std::string key = KeyOf(table, row);
  if (op == "update") {
    std::string old_key = ev["old"].is_null() ? key : KeyOf(table, ev["old"]);
    auto prev = rows.find(old_key);
    if (ev.contains("unchanged_toast")) {
      for (const auto& col : ev["unchanged_toast"]) {
        if (prev != rows.end()) row[col.get<std::string>()] = prev->second[col.get<std::string>()];
      }
    }
    if (old_key != key) rows.erase(old_key);
  }
  rows[key] = std::move(row);
}

const std::map<std::string, nlohmann::json>& JsonlChecker::Rows(const std::string& table) const {
  static const std::map<std::string, nlohmann::json> kEmpty;
  auto it = tables_.find(table);
  return it == tables_.end() ? kEmpty : it->second;
}

std::map<std::string, nlohmann::json> JsonlChecker::KeyRows(
    const std::string& table, const std::vector<std::string>& json_rows) const {
  std::map<std::string, nlohmann::json> out;
  for (const auto& text : json_rows) {
    auto row = nlohmann::json::parse(text);
    std::string key = KeyOf(table, row);  // before the move: json's operator= takes by value
    out[key] = std::move(row);
  }
  return out;
}

std::string JsonlChecker::Diff(const std::map<std::string, nlohmann::json>& expected,
                               const std::map<std::string, nlohmann::json>& actual) {
  std::string out;
  int shown = 0;
  for (const auto& [key, row] : expected) {
    auto it = actual.find(key);
    if (it == actual.end()) {
      if (shown++ < 5) out += fmt::format("missing in sink: {}\n", key);
    } else if (it->second != row) {
      if (shown++ < 5) {
        out += fmt::format("differs {}: source {} sink {}\n", key, row.dump().substr(0, 300),
                           it->second.dump().substr(0, 300));
      }
    }
  }
  for (const auto& [key, row] : actual) {
    if (!expected.count(key) && shown++ < 10) out += fmt::format("extra in sink: {}\n", key);
  }
  if (shown > 0)
    out += fmt::format("({} differences; source {} rows, sink {})\n", shown, expected.size(),
                       actual.size());
  return out;
}

}  // namespace pgfanout::testing
