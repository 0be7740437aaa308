#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "src/core/error.h"

namespace pgfanout::webhook {

// Signs webhook deliveries the Standard Webhooks way (https://www.standardwebhooks.com):
//   webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>
// where `key` is the base64-decoded part of the secret after "whsec_".
//
// The key lives only in this object; nothing here puts it (or the secret text) into an
// error message or a log line. Immutable after Create(); safe to share between threads.
class WebhookSigner {
 public:
  // `secret`: "whsec_<base64>" (the "whsec_" prefix may be left out, as the spec's
  // libraries accept). Errors: kInvalidArgument when it is not base64 or decodes to fewer
  // than 16 bytes (the spec asks for 24 to 64); the message never quotes the secret.
  static Result<WebhookSigner> Create(std::string_view secret);

  // "v1,<base64 signature>" for one delivery. Errors: kSink if OpenSSL fails (out of
  // memory, a provider missing).
  Result<std::string> Sign(std::string_view id, int64_t timestamp, std::string_view body) const;

 private:
  explicit WebhookSigner(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

// Standard base64 (RFC 4648, with padding), as OpenSSL's EVP_EncodeBlock writes it.
std::string Base64Encode(std::string_view bytes);
// nullopt unless `text` is canonical padded base64 (whitespace is not allowed).
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace pgfanout::webhook
