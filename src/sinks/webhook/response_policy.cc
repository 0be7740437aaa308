#include "src/sinks/webhook/response_policy.h"

#include <fmt/format.h>

#include <charconv>
#include <ctime>

namespace pgfanout::webhook {

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    int64_t secs = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return std::chrono::seconds(secs);
  }
  std::tm tm{};
  const std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (at <= now) return std::chrono::seconds(0);
  return std::chrono::duration_cast<std::chrono::seconds>(at - now);
}

std::string BodyExcerpt(std::string_view body, size_t limit) {
  std::string out;
  const bool cut = body.size() > limit;
  if (cut) {
    body = body.substr(0, limit);
    // Do not end inside a UTF-8 sequence.
    while (!body.empty() && (static_cast<unsigned char>(body.back()) & 0xC0) == 0x80) {
      body.remove_suffix(1);
    }
    if (!body.empty() && static_cast<unsigned char>(body.back()) >= 0xC0) body.remove_suffix(1);
  }
  out.reserve(body.size() + 3);
  for (char c : body) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
  if (cut) out += "…";
  return out;
}

std::string ScrubbedBody(std::string_view body) {
  if (body.empty()) return "";
  if (body.size() > kShownBodyBytes) {
    return fmt::format("({} bytes of body, not shown)", body.size());
  }
  std::string text = BodyExcerpt(body, kShownBodyBytes);
  std::string out;
  for (size_t at = 0; at < text.size();) {
    const auto is_digit = [&](size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
    if (is_digit(at)) {
      size_t end = at;
      while (is_digit(end) || (end < text.size() && (text[end] == '-' || text[end] == '.'))) ++end;
      size_t digits = 0;
      for (size_t i = at; i < end; ++i) digits += is_digit(i);
      out += digits >= 4 ? std::string("#") : text.substr(at, end - at);
      at = end;
      continue;
    }
    out.push_back(text[at++]);
  }
  // An address-like word (user@host) goes whole.
  for (size_t at = out.find('@'); at != std::string::npos; at = out.find('@', at + 1)) {
    const auto word = [](char c) { return c != ' ' && c != '"' && c != '\'' && c != ',' &&
                                          c != ':' && c != '{' && c != '}' && c != '[' &&
                                          c != ']' && c != '<' && c != '>' && c != '='; };
    size_t from = at, to = at + 1;
    while (from > 0 && word(out[from - 1])) --from;
    while (to < out.size() && word(out[to])) ++to;
    const std::string masked = "…@…";
    out.replace(from, to - from, masked);
    at = from + masked.size() - 1;
  }
  return out;
}

Verdict JudgeResponse(const HttpResult& r, std::string_view where,
                      std::chrono::system_clock::time_point now) {
  Verdict v;
  if (r.status >= 200 && r.status < 300) {
    v.delivered = true;
    return v;
  }
  const std::string excerpt = ScrubbedBody(r.body);
  const std::string said = excerpt.empty() ? "" : ": " + excerpt;
  if (r.status == 408 || r.status == 429 || (r.status >= 500 && r.status < 600)) {
    std::string wait;
    if (r.status == 429 || r.status == 503) {
      if (auto after = ParseRetryAfter(r.Header("Retry-After"), now)) {
        const auto honoured = std::min(*after, kMaxRetryAfter);
        v.not_before = now + honoured;
        wait = fmt::format(" (Retry-After: next attempt in {} s or later)", honoured.count());
      }
    }
    v.error = MakeError(ErrorKind::kSink, fmt::format("{} answered HTTP {}{}{}; retrying", where,
                                                      r.status, wait, said));
    return v;
  }
  std::string hint;
  if (r.status >= 300 && r.status < 400) {
    const std::string location = r.Header("Location");
    hint = fmt::format(
        " (a redirect{}{}; pgfanout does not follow them: set url to the new "
        "address)",
        location.empty() ? "" : " to ", BodyExcerpt(location));
  } else if (r.status == 401 || r.status == 403) {
    hint = " (does the receiver hold this sink's secret?)";
  }
  v.error = MakeError(ErrorKind::kMismatch,
                      fmt::format("{} refused the batch: HTTP {}{}{}; retrying cannot help, "
                                  "so this sink stops: restart pgfanout once the receiver "
                                  "takes it",
                                  where, r.status, hint, said));
  return v;
}

}  // namespace pgfanout::webhook
