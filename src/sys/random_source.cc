#include "sys/random_source.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>

namespace hearth {

void RandomFill(void* out, size_t size) {
  auto* p = static_cast<unsigned char*>(out);
  size_t got = 0;
  while (got < size) {
    ssize_t n = getrandom(p + got, size - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::abort();  // no kernel randomness: nothing sensible can continue
    }
    got += static_cast<size_t>(n);
  }
}

uint64_t RandomU64() {
  uint64_t v = 0;
  RandomFill(&v, sizeof v);
  return v;
}

std::string RandomHex(size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n);
  uint64_t bits = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) bits = RandomU64();
    out += kDigits[bits & 15];
    bits >>= 4;
  }
  return out;
}

}  // namespace hearth
