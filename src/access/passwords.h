// Password hashing for the `pve` realm: yescrypt via libcrypt (crypt(3) strings, "$y$...").
#pragma once

#include <string>

#include "core/result.h"

namespace hearth {

Result<std::string> HashPassword(const std::string& password);
// Constant-time comparison of the computed hash; false for any malformed hash.
bool VerifyPassword(const std::string& password, const std::string& hash);

}  // namespace hearth
