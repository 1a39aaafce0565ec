#include "access/passwords.h"

#include "sys/crypt_hash.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cstring>
#include <memory>

namespace hearth {

Result<std::string> HashPassword(const std::string& password) {
  if (password.empty()) return Fail(FieldError("password", "password must not be empty"));
  if (password.size() > 4096) return Fail(FieldError("password", "password too long"));
  return CryptHash(password, "$y$");
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
