// Task ids (UPID:node:pid:pstart:starttime:type:id:user:), which clients send back in
// task URLs. Invariant: a parsed UPID prints back to the same text.
#include "fuzz_common.h"
#include "model/upid.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  auto upid = ParseUpid(text);
  if (!upid) return 0;
  auto again = ParseUpid(upid->ToString());
  FUZZ_CHECK(again, "a printed UPID parses");
  FUZZ_CHECK(again->ToString() == upid->ToString(), "UPID printing is stable");
  return 0;
}
