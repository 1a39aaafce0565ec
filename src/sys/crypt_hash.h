// crypt(3) password hashing (libcrypt): "$y$" yescrypt for hearth's own users, "$6$"
// SHA-512 for guest passwords (the format every distribution's chpasswd accepts).
#pragma once

#include <string>

#include "core/result.h"

namespace hearth {

// `method` is the crypt prefix: "$y$", "$6$", ...
Result<std::string> CryptHash(const std::string& password, const char* method);

}  // namespace hearth
