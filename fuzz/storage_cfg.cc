// storage.cfg text (a Proxmox storage configuration to import, and the sections hearth
// stores). Invariants: every storage that parses prints as a section that parses back to the
// same storage, and a printed section never holds more than one storage (no value can start
// a line of its own).
#include "fuzz_common.h"
#include "model/storage_config.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto cfgs = ParseStorageCfg(fuzz::AsText(data, size), nullptr);
  if (!cfgs) return 0;
  for (const auto& cfg : *cfgs) {
    std::string text = PrintStorageSection(cfg);
    auto again = ParseStorageCfg(text, nullptr);
    FUZZ_CHECK(again, "a printed section parses");
    FUZZ_CHECK(again->size() == 1, "a printed section is one storage");
    FUZZ_CHECK((*again)[0].id == cfg.id && (*again)[0].type == cfg.type, "id and type survive");
    FUZZ_CHECK((*again)[0].options == cfg.options, "options survive printing");
  }
  return 0;
}
