#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "src/core/error.h"
#include "src/httpclient/http_client.h"

namespace pgfanout::webhook {

// What one answer of the receiver means for the batch it was sent (the table is in
// README.md). `where` names the sink and the endpoint for messages.
struct Verdict {
  bool delivered = false;  // a 2xx: the receiver acknowledged the body
  Error error;             // when not delivered
  // 429 and 503 with a Retry-After the sink honours: not before this time.
  std::optional<std::chrono::system_clock::time_point> not_before;
};

// - 2xx: delivered.
// - 408, 429, 5xx: kSink (the runner retries with backoff); 429 and 503 honour Retry-After
//   (delta-seconds or an HTTP date), capped at kMaxRetryAfter.
// - any other status (3xx: redirects are not followed; 4xx): kMismatch: the receiver
//   refuses, retrying cannot help, the sink stops until a person looks.
// Messages name the status and the body as ScrubbedBody() shows it.
Verdict JudgeResponse(const HttpResult& response, std::string_view where,
                      std::chrono::system_clock::time_point now);

// Retry-After as delta-seconds ("120") or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
// GMT"); the wait from `now`, never negative; nullopt when unparsable.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::chrono::system_clock::time_point now);

// A receiver's error body as messages (logs, /status) show it: a receiver may echo the
// rows it was sent, which are a tenant's data. Bodies over kShownBodyBytes are not shown
// (their size is); a shorter one is shown with control characters as spaces, runs of four
// digits or more as "#" and address-like words (x@y) as "…@…": {"error":"bad signature"}
// stays readable.
inline constexpr size_t kShownBodyBytes = 120;
std::string ScrubbedBody(std::string_view body);

// At most `limit` bytes of `body`, control characters as spaces, "…" when cut.
std::string BodyExcerpt(std::string_view body, size_t limit = 200);

inline constexpr std::chrono::seconds kMaxRetryAfter{600};

}  // namespace pgfanout::webhook
