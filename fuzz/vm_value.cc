// Every VM config key's value format (property strings, drives, NICs, ipconfig, tags, ...)
// as the API validates it. Input: key name, '\0', value.
// Invariant: a canonical value is a fixed point (canonicalising it again changes nothing),
// because hearth stores canonical values and re-validates them on every later change.
#include "fuzz_common.h"
#include "model/property_string.h"
#include "model/vm_schema.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = fuzz::Fields(fuzz::AsText(data, size), 2);
  const std::string& key = f[0];
  const std::string& value = f[1];
  if (!FindVmKey(key)) return 0;
  auto canon = CanonicalVmValue(key, value);
  if (canon) {
    auto again = CanonicalVmValue(key, *canon);
    FUZZ_CHECK(again, "a canonical value is accepted again");
    FUZZ_CHECK(*again == *canon, "canonicalisation is idempotent");
  }
  (void)NormalizeTags(value);
  (void)SshKeysValid(value);
  (void)ParseBooleanWord(value);
  return 0;
}
