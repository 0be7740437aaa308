#include "test/integration/webhook/webhook_consumer.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <sstream>

namespace pgfanout::testing {
namespace {

using nlohmann::json;

constexpr const char* kUnavailable = "__debezium_unavailable_value";

std::string B64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  out.resize(static_cast<size_t>(
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n))));
  return out;
}

std::optional<std::string> UnB64(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = (text.back() == '=') + (text[text.size() - 2] == '=');
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::optional<std::pair<uint64_t, uint32_t>> ParseId(const std::string& id) {
  unsigned hi = 0, lo = 0, ord = 0;
  if (std::sscanf(id.c_str(), "%X/%X#%u", &hi, &lo, &ord) != 3) return std::nullopt;
  return std::pair{(uint64_t{hi} << 32) | lo, static_cast<uint32_t>(ord)};
}

const std::vector<std::string>& KeyColumns(const std::string& table) {
  static const std::vector<std::string> accounts = {"tenant_id", "id"}, events = {"id"};
  return table == "accounts" ? accounts : events;
}

std::string Scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// The key text SinkE2ETest uses ("t1/7", "1042") from an object holding the key columns.
std::optional<std::string> KeyOf(const std::string& table, const json& row) {
  if (!row.is_object()) return std::nullopt;
  std::string key;
  for (const auto& c : KeyColumns(table)) {
    if (!row.contains(c) || row[c].is_null()) return std::nullopt;
    key += (key.empty() ? "" : "/") + Scalar(row[c]);
  }
  return key;
}

// jsonb's text form (what `payload::text` prints): keys ordered by length then bytes,
// ", " and ": " between items.
void JsonbText(const json& v, std::string& out) {
  if (v.is_object()) {
    std::vector<std::string> keys;
    for (const auto& [k, _] : v.items()) keys.push_back(k);
    std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    out += '{';
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i) out += ", ";
      out += json(keys[i]).dump() + ": ";
      JsonbText(v[keys[i]], out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      JsonbText(v[i], out);
    }
    out += ']';
  } else {
    out += v.dump();
  }
}

// A value in the source's ::text form, as the fixture compares them.
std::optional<std::string> Text(const std::string& column, const json& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) {
    return column == "balance" ? fmt::format("{:.2f}", v.get<double>()) : v.dump();
  }
  if (v.is_object() || v.is_array()) {
    std::string s;
    JsonbText(v, s);
    return s;
  }
  return Scalar(v);
}

}  // namespace

std::string WebhookConsumer::Verify(const std::string& secret, const ReceivedRequest& r) {
  const std::string id = r.Header("webhook-id"), ts = r.Header("webhook-timestamp"),
                    sigs = r.Header("webhook-signature");
  if (id.empty() || ts.empty() || sigs.empty()) return "a webhook-* header is missing";
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (std::llabs(now - std::stoll(ts)) > 300) return "timestamp " + ts + " is not recent";
  auto key = UnB64(secret.substr(secret.rfind('_') + 1));
  if (!key) return "cannot read the secret";
  const std::string content = id + "." + ts + "." + r.body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  const std::string want = "v1," + B64(mac, len);
  std::istringstream entries(sigs);
  for (std::string e; entries >> e;) {
    if (e == want) return "";
  }
  return "no signature in '" + sigs + "' matches";
}

void WebhookConsumer::Problem(State& s, std::string what) {
  if (s.stats.problems.size() < 10) s.stats.problems.push_back(std::move(what));
}

void WebhookConsumer::Receive(const ReceivedRequest& r) {
  std::lock_guard lock(mu_);
  State& s = states_[r.path];
  ++s.stats.requests;
  if (std::string why = Verify(secret_, r); !why.empty()) {
    ++s.stats.bad_signatures;
    Problem(s, r.Header("webhook-id") + ": " + why);
    return;  // a consumer refuses what it cannot verify
  }
  json body = json::parse(r.body, nullptr, false);
  if (body.is_discarded()) {
    ++s.stats.malformed;
    Problem(s, r.Header("webhook-id") + ": the body is not JSON");
    return;
  }
  if (body.is_object() && body.contains("data")) {
    for (const auto& e : body["data"]["events"]) Apply(s, e, false);
  } else if (body.is_array()) {
    for (const auto& e : body) Apply(s, e, true);
  } else {
    Apply(s, body, true);
  }
}

void WebhookConsumer::Apply(State& s, const json& e, bool debezium) {
  try {
    // The two envelopes, read into one shape.
    std::string id, table, op;
    uint64_t version = 0;
    json now = nullptr, old = nullptr, only_tenants = nullptr;
    std::set<std::string> unchanged;
    if (debezium) {
      const json& src = e.at("source");
      id = src.at("event_id").get<std::string>();
      table = src.at("table").get<std::string>();
      version = src.at("lsn").get<uint64_t>();
      const std::string o = e.at("op").get<std::string>();
      op = o == "c" ? "insert" : o == "u" ? "update" : o == "d" ? "delete" : "truncate";
      now = e.at("after");
      old = e.at("before");
      if (src.contains("only_tenants")) only_tenants = src["only_tenants"];
      if (now.is_object()) {
        for (auto it = now.begin(); it != now.end();) {
          if (it.value() == kUnavailable) {
            unchanged.insert(it.key());
            it = now.erase(it);
          } else {
            ++it;
          }
        }
      }
    } else {
      id = e.at("id").get<std::string>();
      table = e.at("table").get<std::string>();
      op = e.at("op").get<std::string>();
      auto parsed = ParseId(e.at("lsn").get<std::string>() + "#0");
      if (!parsed) throw std::runtime_error("bad lsn");
      version = parsed->first;
      now = e.value("new", json(nullptr));
      old = e.value("old", json(nullptr));
      if (e.contains("only_tenants")) only_tenants = e["only_tenants"];
      for (const auto& c : e.value("unchanged_toast", json::array())) unchanged.insert(c);
    }
    const std::string text = e.dump();
    if (auto seen = s.applied.find(id); seen != s.applied.end()) {
      ++s.stats.duplicates;
      if (seen->second != text) {
        ++s.stats.conflicting_duplicates;
        Problem(s, "event " + id + " came again with other content");
      }
      return;
    }
    auto pos = ParseId(id);
    if (!pos) throw std::runtime_error("bad id " + id);
    if (*pos < s.highest) {
      ++s.stats.out_of_order;
      Problem(s, "event " + id + " arrived after a later one");
    }
    s.highest = std::max(s.highest, *pos);
    s.applied[id] = text;
    ++s.stats.events;
    auto& rows = s.tables[table];
    if (op == "truncate") {
      for (auto it = rows.begin(); it != rows.end();) {
        const bool mine =
            only_tenants.is_null() || std::count(only_tenants.begin(), only_tenants.end(),
                                                 it->second.values["tenant_id"]) > 0;
        it = mine ? rows.erase(it) : std::next(it);
      }
      return;
    }
    if (op == "delete") {
      auto key = KeyOf(table, old);
      if (!key) throw std::runtime_error("a delete without its key");
      if (auto it = rows.find(*key); it != rows.end() && it->second.version <= version) {
        rows.erase(it);
      }
      return;
    }
    auto key = KeyOf(table, now);
    if (!key) throw std::runtime_error("an " + op + " without its key");
    // An update that changed the key names the old one; the row (and its unchanged TOAST
    // values) is found there.
    auto from = old.is_object() ? KeyOf(table, old) : std::nullopt;
    const std::string at = from.value_or(*key);
    Row row;
    if (auto it = rows.find(at); it != rows.end()) {
      if (it->second.version > version) return;  // a newer change is applied already
      row = it->second;
      if (at != *key) rows.erase(it);
    } else if (!unchanged.empty()) {
      Problem(s, "event " + id + ": unchanged TOAST values of a row it never had");
    }
    if (auto it = rows.find(*key); it != rows.end() && it->second.version > version) return;
    for (const auto& [c, v] : now.items()) row.values[c] = v;
    row.version = version;
    rows[*key] = std::move(row);
  } catch (const std::exception& ex) {
    ++s.stats.malformed;
    Problem(s, std::string("cannot apply ") + e.dump().substr(0, 200) + ": " + ex.what());
  }
}

WebhookConsumer::Stats WebhookConsumer::stats(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = states_.find(path);
  return it == states_.end() ? Stats{} : it->second.stats;
}

SinkE2ETest::Rows WebhookConsumer::Rows(const std::string& path, const std::string& table,
                                        const std::vector<std::string>& columns,
                                        const std::set<std::string>& tenants) const {
  std::lock_guard lock(mu_);
  SinkE2ETest::Rows out;
  auto st = states_.find(path);
  if (st == states_.end()) return out;
  auto t = st->second.tables.find(table);
  if (t == st->second.tables.end()) return out;
  for (const auto& [key, row] : t->second) {
    SinkE2ETest::Row values;
    for (const auto& c : columns) {
      auto v = row.values.find(c);
      values.push_back(v == row.values.end() ? std::optional<std::string>("<missing>")
                                             : Text(c, v->second));
    }
    auto tenant = row.values.find("tenant_id");
    if (!tenants.empty() &&
        (tenant == row.values.end() || !tenants.count(Scalar(tenant->second)))) {
      continue;
    }
    out[key] = std::move(values);
  }
  return out;
}

}  // namespace pgfanout::testing
