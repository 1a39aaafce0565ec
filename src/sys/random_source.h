// The project's one source of randomness, for names, ids and key material alike (temp
// files, multipart boundaries, QGA sync ids, MAC addresses, UUIDs, the CSRF secret,
// certificate serials): the kernel's CSPRNG through getrandom(2), which is also what
// OpenSSL seeds from. Thread-safe; never blocks after early boot; aborts the process if the
// kernel has no randomness to give (no caller can go on safely with predictable bytes).
#pragma once

#include <cstdint>
#include <string>

namespace hearth {

void RandomFill(void* out, size_t n);

// The same source behind an interface, for code whose tests want repeatable values (MAC
// addresses, UUIDs): the fuzz targets inject a fixed one (fuzz/api_env.h).
class Random {
 public:
  virtual ~Random() = default;
  virtual void Fill(void* out, size_t n) = 0;  // thread-safe
};

class SystemRandom final : public Random {
 public:
  void Fill(void* out, size_t n) override { RandomFill(out, n); }
};
uint64_t RandomU64();
// `n` lowercase hex digits of randomness, for unique file names.
std::string RandomHex(size_t n = 16);

}  // namespace hearth
