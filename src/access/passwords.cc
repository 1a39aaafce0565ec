#include "access/passwords.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cstring>
#include <memory>

namespace hearth {

Result<std::string> HashPassword(const std::string& password) {
  if (password.empty()) return Fail(FieldError("password", "password must not be empty"));
  if (password.size() > 4096) return Fail(FieldError("password", "password too long"));
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$y$", 0, nullptr, 0, salt, sizeof salt)) return Fail(Internal("crypt_gensalt failed"));
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* h = crypt_r(password.c_str(), salt, data.get());
  if (!h || h[0] == '*') return Fail(Internal("crypt failed"));
  return std::string(h);
}

bool VerifyPassword(const std::string& password, const std::string& hash) {
  if (hash.empty() || hash[0] != '$') return false;
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* h = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (!h || h[0] == '*') return false;
  size_t n = std::strlen(h);
  return n == hash.size() && CRYPTO_memcmp(h, hash.data(), n) == 0;
}

}  // namespace hearth
