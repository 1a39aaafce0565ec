// The VM config file (/etc/pve/qemu-server/<vmid>.conf format) with [PENDING] and
// [snapshot] sections, read at every start from disk. Invariant: what parses prints and
// parses back to the same config, and printing is stable.
#include "fuzz_common.h"
#include "model/vm_config.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = ParseConfFile(fuzz::AsText(data, size));
  if (!config) return 0;
  std::string text = FormatConfFile(*config);
  auto again = ParseConfFile(text);
  FUZZ_CHECK(again, "a printed config parses");
  FUZZ_CHECK(FormatConfFile(*again) == text, "print(parse(print(c))) == print(c)");
  (void)ReferencedVolumes(*config, true);
  (void)NextUnusedKey(*config);
  (void)config->WithPending();
  (void)ConfDigest(text);
  return 0;
}
