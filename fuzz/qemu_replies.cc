// QMP and guest-agent reply lines (from QEMU and from the guest, which is untrusted) and the
// typed readings of QMP return values. Invariant: never throws, whatever the shape.
#include "fuzz_common.h"
#include "qemu/backup_access.h"
#include "qemu/replies.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line = fuzz::AsText(data, size);
  QmpLine q = ReadQmpLine(line);
  if (q.kind == QmpLine::Kind::kReturn) {
    (void)QmpRunState(q.value);
    (void)SumBlockStats(q.value);
    (void)MigrationErrorDesc(q.value);
    (void)MachineTypeFromQom(q.value);
    (void)FindBlockJob(q.value, "mirror-scsi0");
    (void)BlockNodeOfDevice(q.value, "scsi0");
    (void)BlockNodeOfDevice(q.value, "virtio0");
    (void)ReadNamedBlockNodes(q.value);
    (void)q.value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (q.kind == QmpLine::Kind::kEvent) {
    (void)QmpEventName(q.value);
    (void)MigrationEventStatus(q.value);
    (void)ReadBlockJobEvent(q.value);
  }
  (void)IsQgaSyncReply(line, 12345);
  if (auto r = ReadQgaReply(line, "guest-exec-status"))
    (void)r->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
