#include "src/sinks/webhook/signature.h"

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <memory>
#include <optional>

namespace pgfanout::webhook {
namespace {

constexpr std::string_view kPrefix = "whsec_";
constexpr size_t kMinKeyBytes = 16;

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || (c == '=' && i + 2 >= text.size());
    if (!ok) return std::nullopt;
  }
  if (text.size() >= 2 && text[text.size() - 2] == '=' && text.back() != '=') return std::nullopt;
  std::string out(3 * text.size() / 4, '\0');
  // EVP_DecodeBlock writes the padding as zero bytes; they are cut below.
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<WebhookSigner> WebhookSigner::Create(std::string_view secret) {
  if (secret.starts_with(kPrefix)) secret.remove_prefix(kPrefix.size());
  auto key = Base64Decode(secret);
  if (!key) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "the webhook secret is not whsec_ followed by base64 (the secret itself is "
                     "not shown)");
  }
  if (key->size() < kMinKeyBytes) {
    const size_t got = key->size();
    OPENSSL_cleanse(key->data(), key->size());
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("the webhook secret's key is {} bytes; at least {} are needed "
                                 "(Standard Webhooks: 24 to 64)",
                                 got, kMinKeyBytes));
  }
  return WebhookSigner(std::move(*key));
}

Result<std::string> WebhookSigner::Sign(std::string_view id, int64_t timestamp,
                                        std::string_view body) const {
  // EVP_MAC (the OpenSSL 3 API) takes the signed content in pieces: the body, which may be
  // megabytes, is not copied to build "<id>.<timestamp>.<body>".
  std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr),
                                                        &EVP_MAC_free);
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(
      mac ? EVP_MAC_CTX_new(mac.get()) : nullptr, &EVP_MAC_CTX_free);
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                         OSSL_PARAM_construct_end()};
  const std::string prefix = fmt::format("{}.{}.", id, timestamp);
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t out_len = 0;
  const bool ok = ctx &&
                  EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key_.data()),
                               key_.size(), params) == 1 &&
                  EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(prefix.data()),
                                 prefix.size()) == 1 &&
                  EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(body.data()),
                                 body.size()) == 1 &&
                  EVP_MAC_final(ctx.get(), out, &out_len, sizeof(out)) == 1;
  if (!ok) return MakeError(ErrorKind::kSink, "OpenSSL could not compute HMAC-SHA256");
  return "v1," + Base64Encode(std::string_view(reinterpret_cast<const char*>(out), out_len));
}

}  // namespace pgfanout::webhook
