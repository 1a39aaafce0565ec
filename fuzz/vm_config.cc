// The VM config file (/etc/pve/qemu-server/<vmid>.conf format) with [PENDING] and
// [snapshot] sections, read at every start from disk. Invariant: what parses prints and
// parses back to the same config, and printing is stable.
#include "fuzz_common.h"
#include "model/vm_config.h"
#include "model/vm_snapshot.h"

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
  // The snapshot steps on whatever the file holds: a result must still print and parse.
  if (!config->snapshots.empty()) {
    const std::string name = config->snapshots.begin()->first;
    VmConfig rolled = *config;
    rolled.values["lock"] = "rollback";
    if (ApplyRollback(rolled, name)) FUZZ_CHECK(ParseConfFile(FormatConfFile(rolled)), "a rolled-back config parses");
    VmConfig deleted = *config;
    deleted.values.erase("lock");
    if (PrepareSnapshotDelete(deleted, name) && FinishSnapshotDelete(deleted, name)) {
      FUZZ_CHECK(!deleted.snapshots.count(name), "a deleted snapshot is gone");
      FUZZ_CHECK(ParseConfFile(FormatConfFile(deleted)), "a config without the snapshot parses");
    }
    VmConfig made = *config;
    made.values.erase("lock");
    made.values.erase("template");
    if (PrepareSnapshot(made, "fuzz-snap", "d", 1, nullptr) && CommitSnapshot(made, "fuzz-snap"))
      FUZZ_CHECK(ParseConfFile(FormatConfFile(made)), "a config with a new snapshot parses");
  }
  return 0;
}
