// The head of a btrfs send stream a replication target receives from the network
// (storage/btrfs/send_stream.h), and the replication ids and snapshot names that come with
// it. Invariants: an accepted stream names one plain subvolume (no '/', not "." or "..");
// an accepted snapshot name prints back to itself.
#include "fuzz_common.h"
#include "jobs/replication_job.h"
#include "model/vm_snapshot.h"
#include "storage/btrfs/send_stream.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto h = ParseSendStreamHead(bytes)) {
    FUZZ_CHECK(!h->path.empty() && h->path.find('/') == std::string::npos && h->path != "." && h->path != "..",
               "a stream makes one plain-named subvolume");
  }
  std::string text(fuzz::AsText(data, std::min<size_t>(size, 4096)));
  if (auto p = ParseReplicationSnapshotName(text))
    FUZZ_CHECK(ReplicationSnapshotName(p->first, p->second) == text, "a replication snapshot name prints back");
  if (auto id = ParseReplicationJobId(text))
    FUZZ_CHECK(id->first >= 100 && id->second >= 0, "a job id has a guest id of 100 or more");
  return 0;
}
