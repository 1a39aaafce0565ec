#include "backup/crypt_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "core/time_format.h"

namespace hearth {
namespace {

using Bytes32 = std::array<uint8_t, 32>;

Bytes32 Hmac(const Bytes32& key, std::string_view data) {
  Bytes32 out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out.data(), &len);
  return out;
}

const char* kNotAKey = "Value does not seems like a valid, JSON formatted encryption key!";

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

BackupKey::BackupKey(const Bytes32& secret) : secret_(secret) {
  // Labels, not the secret itself, for each use: a flaw in one use never exposes the other.
  id_key_ = Hmac(secret_, "hearth backup chunk id");
  enc_key_ = Hmac(secret_, "hearth backup encryption");
  sign_key_ = Hmac(secret_, "hearth backup manifest signature");
  Bytes32 fp = Hmac(secret_, "hearth backup key fingerprint");
  std::string hex = HexEncode(std::string_view(reinterpret_cast<const char*>(fp.data()), fp.size()));
  for (size_t i = 0; i < hex.size(); i += 2) fingerprint_ += (i ? ":" : "") + hex.substr(i, 2);
}

Result<BackupKey> BackupKey::Generate() {
  Bytes32 secret{};
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1)
    return Fail(Internal("could not generate an encryption key: the random generator failed"));
  BackupKey key(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  return key;
}

Result<BackupKey> BackupKey::FromKeyFile(std::string_view text) {
  if (text.size() > kMaxKeyFile) return Fail(InvalidArgument(kNotAKey));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_string()) return Fail(InvalidArgument(kNotAKey));
  if (j.contains("kdf") && !j["kdf"].is_null()) {
    std::string kdf = j["kdf"].is_object() && !j["kdf"].empty() ? j["kdf"].begin().key()
                      : j["kdf"].is_string()                   ? j["kdf"].get<std::string>().substr(0, 32)
                                                               : "unknown";
    return Fail(InvalidArgument("the key is protected by a passphrase (kdf '" + kdf +
                                "'), which unattended backups cannot enter: use a key made with --kdf none"));
  }
  auto data = Base64Decode(j["data"].get<std::string>());
  if (!data || data->size() != 32) return Fail(InvalidArgument(kNotAKey));
  Bytes32 secret{};
  std::copy(data->begin(), data->end(), secret.begin());
  OPENSSL_cleanse(data->data(), data->size());
  BackupKey key(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  return key;
}

std::string BackupKey::ToKeyFile(int64_t created_unix) const {
  std::string when = FormatUnixTime(created_unix, "%Y-%m-%dT%H:%M:%SZ", true);
  nlohmann::json j = {{"kdf", nullptr},
                      {"created", when},
                      {"modified", when},
                      {"data", Base64Encode(std::string_view(reinterpret_cast<const char*>(secret_.data()), 32))},
                      {"fingerprint", fingerprint_}};
  return j.dump(2) + "\n";
}

std::array<uint8_t, 32> BackupKey::ChunkId(std::string_view data) const { return Hmac(id_key_, data); }

std::string BackupKey::Sign(std::string_view data) const {
  Bytes32 mac = Hmac(sign_key_, data);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

Result<std::string> BackupKey::Seal(std::string_view plain, std::string_view aad) const {
  std::string out(kIvBytes + kTagBytes + plain.size(), '\0');
  auto* iv = reinterpret_cast<unsigned char*>(out.data());
  auto* tag = iv + kIvBytes;
  auto* ct = tag + kTagBytes;
  if (RAND_bytes(iv, kIvBytes) != 1) return Fail(Internal("encryption: the random generator failed"));
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, enc_key_.data(), iv) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), ct, &len, U(plain), static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) == 1;
  if (!ok) return Fail(Internal("encryption failed (OpenSSL)"));
  return out;
}

Result<std::string> BackupKey::Open(std::string_view sealed, std::string_view aad) const {
  auto bad = [] { return Fail(Internal("decryption failed (wrong key or modified data)")); };
  if (sealed.size() < kIvBytes + kTagBytes) return bad();
  const auto* iv = U(sealed);
  std::string tag(sealed.substr(kIvBytes, kTagBytes));
  std::string_view ct = sealed.substr(kIvBytes + kTagBytes);
  std::string out(ct.size(), '\0');
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, enc_key_.data(), iv) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, U(ct),
                              static_cast<int>(ct.size())) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  if (!ok) return bad();
  return out;
}

}  // namespace hearth
