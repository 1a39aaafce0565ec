// The project's one source of randomness for names and ids (temp files, staging files,
// multipart boundaries, QGA sync ids): the kernel's CSPRNG through getrandom(2).
// Thread-safe; never blocks after early boot. Key material uses OpenSSL's RAND_bytes.
#pragma once

#include <cstdint>
#include <string>

namespace hearth {

uint64_t RandomU64();
// `n` lowercase hex digits of randomness, for unique file names.
std::string RandomHex(size_t n = 16);

}  // namespace hearth
