#include "test/integration/nats/stream_state.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "src/sinks/nats/nats_event.h"

namespace pgfanout::testing {
namespace {

size_t SkipBlanks(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// The end of the JSON string starting at s[i] == '"' (one past its closing quote), or npos.
size_t StringEnd(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// The end of the JSON value starting at s[i], or npos.
size_t ValueEnd(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') return StringEnd(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      if (s[i] == '"') {
        i = StringEnd(s, i);
        if (i == std::string_view::npos) return i;
        --i;
      } else if (s[i] == '{' || s[i] == '[') {
        ++depth;
      } else if (s[i] == '}' || s[i] == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }
  size_t start = i;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ') ++i;
  return i > start ? i : std::string_view::npos;
}

// A raw JSON value as the text SinkE2ETest compares: null -> nullopt, a string decoded, any
// other value (number, boolean, object, array) as written.
std::optional<std::string> Text(const std::string& raw) {
  if (raw == "null") return std::nullopt;
  if (!raw.empty() && raw.front() == '"') return nlohmann::json::parse(raw).get<std::string>();
  return raw;
}

}  // namespace

std::optional<std::map<std::string, std::string>> RawMembers(std::string_view s) {
  std::map<std::string, std::string> out;
  size_t i = SkipBlanks(s, 0);
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  i = SkipBlanks(s, i + 1);
  if (i < s.size() && s[i] == '}')
    return SkipBlanks(s, i + 1) == s.size() ? std::optional(out) : std::nullopt;
  while (true) {
    if (i >= s.size() || s[i] != '"') return std::nullopt;
    size_t key_end = StringEnd(s, i);
    if (key_end == std::string_view::npos) return std::nullopt;
    auto key = nlohmann::json::parse(s.substr(i, key_end - i), nullptr, false);
    if (!key.is_string()) return std::nullopt;
    i = SkipBlanks(s, key_end);
    if (i >= s.size() || s[i] != ':') return std::nullopt;
    i = SkipBlanks(s, i + 1);
    size_t end = ValueEnd(s, i);
    if (end == std::string_view::npos) return std::nullopt;
    out[key.get<std::string>()] = std::string(s.substr(i, end - i));
    i = SkipBlanks(s, end);
    if (i < s.size() && s[i] == ',') {
      i = SkipBlanks(s, i + 1);
      continue;
    }
    if (i < s.size() && s[i] == '}')
      return SkipBlanks(s, i + 1) == s.size() ? std::optional(out) : std::nullopt;
    return std::nullopt;
  }
}

void StreamState::Problem(const std::string& text) {
  if (problem_count_++ < 20) problems_ += text + "\n";
  if (problem_count_ == 21) problems_ += "…\n";
}

bool StreamState::Refresh(const NatsServer& server, std::string* error) {
  auto got = server.ReadStream(stream_, last_seq_, error);
  if (!got) return false;
  for (const auto& m : *got) {
    Apply(m);
    last_seq_ = std::max(last_seq_, m.seq);
  }
  return true;
}

std::string StreamState::KeyOf(const std::string& table, const Values& row) const {
  std::string key;
  for (const auto& c : keys_.at(table)) {
    auto it = row.find(c);
    key += (key.empty() ? "" : "/") + (it != row.end() && it->second ? *it->second : "NULL");
  }
  return key;
}

void StreamState::Apply(const StoredMessage& m) {
  ++messages_;
  if (sample_.size() < 50) sample_.push_back(m);
  auto top = RawMembers(m.data);
  if (!top || !top->count("id") || !top->count("op") || !top->count("table")) {
    return Problem(fmt::format("seq {}: not an event: {}", m.seq, m.data.substr(0, 200)));
  }
  auto& f = *top;
  const std::string id_text = *Text(f["id"]);
  const auto id = EventId::Parse(id_text);
  if (!id) return Problem(fmt::format("seq {}: bad id {}", m.seq, id_text));
  if (m.msg_id != id_text) {
    Problem(
        fmt::format("seq {}: Nats-Msg-Id '{}' is not the body's id {}", m.seq, m.msg_id, id_text));
  }
  if (auto [it, fresh] = seq_of_id_.emplace(id_text, m.seq); !fresh) {
    Problem(fmt::format("event {} stored twice: seq {} and {}", id_text, it->second, m.seq));
  }
  const std::string op = *Text(f["op"]);
  const std::string schema = Text(f["schema"]).value_or("");
  const std::string table = Text(f["table"]).value_or("");
  const auto tenant = Text(f["tenant"]);
  const std::string want_subject =
      fmt::format("{}.{}.{}.{}", prefix_,
                  op == "truncate" ? std::string(nats::kTruncateToken)
                  : tenant         ? nats::SubjectToken(*tenant)
                                   : std::string("_"),
                  nats::SubjectToken(schema), nats::SubjectToken(table));
  if (m.subject != want_subject) {
    Problem(fmt::format("event {}: subject {}, expected {}", id_text, m.subject, want_subject));
  }
  if (tenant && !tenants_.empty() && !tenants_.count(*tenant)) {
    Problem(fmt::format("event {} of tenant {} reached a sink of other tenants", id_text, *tenant));
  }
  if (!keys_.count(table))
    return Problem(fmt::format("event {}: unknown table {}", id_text, table));
  auto& rows = tables_[table];
  auto values = [&](const char* member) -> std::optional<Values> {
    auto it = f.find(member);
    if (it == f.end() || it->second == "null") return std::nullopt;
    auto raw = RawMembers(it->second);
    if (!raw) {
      Problem(fmt::format("event {}: {} is not an object", id_text, member));
      return std::nullopt;
    }
    Values out;
    for (const auto& [k, v] : *raw) out[k] = Text(v);
    return out;
  };
  // Applies `row` (nullopt: a delete) at `key` unless the key holds a newer version.
  auto put = [&](const std::string& key, std::optional<Values> row) {
    auto& slot = rows[key];
    if (slot.version > *id) return;
    slot.version = *id;
    slot.row = std::move(row);
    slot.tenant = tenant;
  };
  if (op == "truncate") {
    std::set<std::string> only;
    if (auto it = f.find("only_tenants"); it != f.end()) {
      for (const auto& t : nlohmann::json::parse(it->second)) only.insert(t.get<std::string>());
    }
    for (auto& [key, slot] : rows) {
      if (only.empty() || (slot.tenant && only.count(*slot.tenant))) put(key, std::nullopt);
    }
    return;
  }
  auto new_row = values("new");
  auto old_row = values("old");
  if (op == "delete") {
    auto key = values("key");
    if (!key && !old_row) return Problem(fmt::format("event {}: a delete without key", id_text));
    return put(KeyOf(table, key ? *key : *old_row), std::nullopt);
  }
  if (!new_row) return Problem(fmt::format("event {}: an {} without new", id_text, op));
  const std::string key = KeyOf(table, *new_row);
  if (op == "update") {
    const std::string old_key = old_row ? KeyOf(table, *old_row) : key;
    auto prev = rows.find(old_key);
    if (auto it = f.find("unchanged_toast"); it != f.end()) {
      for (const auto& col : nlohmann::json::parse(it->second)) {
        const std::string c = col.get<std::string>();
        if (prev != rows.end() && prev->second.row && prev->second.row->count(c)) {
          (*new_row)[c] = prev->second.row->at(c);
        } else {
          Problem(
              fmt::format("event {}: unchanged TOAST value of {} at {} that the stream "
                          "never had",
                          id_text, c, old_key));
        }
      }
    }
    if (old_key != key) put(old_key, std::nullopt);
  } else if (op != "insert") {
    return Problem(fmt::format("event {}: unknown op {}", id_text, op));
  }
  put(key, std::move(new_row));
}

SinkE2ETest::Rows StreamState::Rows(const std::string& table, const std::set<std::string>& tenants,
                                    const std::vector<std::string>& columns) const {
  SinkE2ETest::Rows out;
  auto t = tables_.find(table);
  if (t == tables_.end()) return out;
  for (const auto& [key, slot] : t->second) {
    if (!slot.row) continue;
    if (!tenants.empty() && (!slot.tenant || !tenants.count(*slot.tenant))) continue;
    SinkE2ETest::Row row;
    for (const auto& c : columns) {
      auto it = slot.row->find(c);
      row.push_back(it == slot.row->end() ? std::nullopt : it->second);
    }
    out[key] = std::move(row);
  }
  return out;
}

}  // namespace pgfanout::testing
