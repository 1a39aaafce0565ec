// Shared by the libFuzzer targets: an invariant check that reports and aborts (libFuzzer
// then saves the input as crash-*), and splitting one input into several fields.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#define FUZZ_CHECK(cond, what)                                                   \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

namespace hearth::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The input cut at each '\0' into at most `n` fields (the last keeps any further '\0's).
inline std::vector<std::string> Fields(std::string_view in, size_t n) {
  std::vector<std::string> out;
  while (out.size() + 1 < n) {
    size_t z = in.find('\0');
    if (z == std::string_view::npos) break;
    out.emplace_back(in.substr(0, z));
    in.remove_prefix(z + 1);
  }
  out.emplace_back(in);
  out.resize(n);
  return out;
}

}  // namespace hearth::fuzz
