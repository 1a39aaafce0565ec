#include "sys/crypt_hash.h"

#include <crypt.h>

#include <cstring>
#include <memory>

namespace hearth {

Result<std::string> CryptHash(const std::string& password, const char* method) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn(method, 0, nullptr, 0, salt, sizeof salt)) return Fail(Internal("crypt_gensalt failed"));
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* h = crypt_r(password.c_str(), salt, data.get());
  if (!h || h[0] == '*') return Fail(Internal("crypt failed"));
  return std::string(h);
}

}  // namespace hearth
