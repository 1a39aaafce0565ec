#include "access/tickets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cctype>
#include <cstdio>
#include <optional>
#include <string>

#include "access/userid.h"
#include "core/strings.h"

namespace hearth {

struct TicketAuthority::Keys {
  EVP_PKEY* key = nullptr;
  ~Keys() { EVP_PKEY_free(key); }
};

TicketAuthority::~TicketAuthority() = default;

Result<std::string> TicketAuthority::GenerateKeyPem() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!key) return Fail(Internal("cannot generate Ed25519 key"));
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, len);
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

Result<std::unique_ptr<TicketAuthority>> TicketAuthority::Create(const std::string& pem, const std::string& secret) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return Fail(Internal("cannot read the ticket signing key"));
  if (secret.size() < 16) {
    EVP_PKEY_free(key);
    return Fail(Internal("CSRF secret too short"));
  }
  std::unique_ptr<TicketAuthority> ta(new TicketAuthority());
  ta->keys_ = std::make_unique<Keys>();
  ta->keys_->key = key;
  ta->csrf_secret_ = secret;
  return ta;
}

static std::string HexTime(int64_t t) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08llX", static_cast<unsigned long long>(t));
  return buf;
}

// The 8 upper- or lower-case hex digits HexTime writes.
static std::optional<int64_t> ParseHexTime(const std::string& hex) {
  if (hex.size() != 8) return std::nullopt;
  int64_t t = 0;
  for (char c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    t = t * 16 + (std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::toupper(static_cast<unsigned char>(c)) - 'A' + 10);
  }
  return t;
}

static bool InWindow(int64_t stamp, int64_t now) {
  int64_t age = now - stamp;
  return age > -kTicketClockSkew && age < kTicketLifetime;
}

std::string TicketAuthority::MakeTicket(const std::string& userid, int64_t now) const {
  std::string escaped;
  for (char c : userid) escaped += c == ':' ? std::string("%3A") : c == '%' ? std::string("%25") : std::string(1, c);
  std::string plain = "PVE:" + escaped + ":" + HexTime(now);
  unsigned char sig[64];
  size_t siglen = sizeof sig;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, keys_->key);
  EVP_DigestSign(ctx, sig, &siglen, reinterpret_cast<const unsigned char*>(plain.data()), plain.size());
  EVP_MD_CTX_free(ctx);
  return plain + "::" + Base64Encode(std::string_view(reinterpret_cast<char*>(sig), siglen));
}

Result<TicketAuthority::Verified> TicketAuthority::VerifyTicket(const std::string& ticket, int64_t now) const {
  auto invalid = [] { return Fail(Unauthenticated("invalid ticket")); };
  // "PVE:" + escaped id (at most 3 x 64 bytes) + ":" + 8 hex digits + "::" + base64(64 bytes).
  if (ticket.size() > 512) return invalid();
  size_t sep = ticket.find("::");
  if (sep == std::string::npos || !StartsWith(ticket, "PVE:")) return invalid();
  std::string plain = ticket.substr(0, sep);
  auto sig = Base64Decode(ticket.substr(sep + 2));
  if (!sig || sig->size() != 64) return invalid();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, keys_->key);
  int ok = EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                            reinterpret_cast<const unsigned char*>(plain.data()), plain.size());
  EVP_MD_CTX_free(ctx);
  if (ok != 1) return invalid();
  size_t last = plain.rfind(':');
  std::string hex = plain.substr(last + 1);
  if (hex.size() != 8 || last < 4) return invalid();
  auto parsed = ParseHexTime(hex);
  if (!parsed) return invalid();
  int64_t stamp = *parsed;
  if (!InWindow(stamp, now)) return Fail(Unauthenticated("ticket expired"));
  auto user = PercentDecode(plain.substr(4, last - 4), false);
  // The decoded id must be a user id; MakeTicket's escaping makes this decode exact.
  if (!user || !ParseUserId(*user)) return invalid();
  return Verified{*user, stamp};
}

std::string TicketAuthority::MakeCsrfToken(const std::string& userid, int64_t now) const {
  std::string stamp = HexTime(now);
  std::string msg = stamp + ":" + userid;
  unsigned char mac[32];
  unsigned int maclen = sizeof mac;
  HMAC(EVP_sha256(), csrf_secret_.data(), static_cast<int>(csrf_secret_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &maclen);
  return stamp + ":" + Base64Encode(std::string_view(reinterpret_cast<char*>(mac), maclen), false);
}

bool TicketAuthority::VerifyCsrfToken(const std::string& token, const std::string& userid, int64_t now) const {
  size_t colon = token.find(':');
  if (colon != 8) return false;
  auto t = ParseHexTime(token.substr(0, 8));
  if (!t || !InWindow(*t, now)) return false;
  std::string expected = MakeCsrfToken(userid, *t);
  return expected.size() == token.size() && CRYPTO_memcmp(expected.data(), token.data(), token.size()) == 0;
}

}  // namespace hearth
