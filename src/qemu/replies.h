// Readers for one line of QMP or guest-agent (QGA) output. Both channels carry input hearth
// does not control (QEMU; for QGA the guest itself), so these never throw, bound the JSON
// nesting depth before parsing, and accept any JSON shape: a member of the wrong type is
// a malformed reply, not an exception. Pure functions (no I/O), fuzzed in fuzz/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "qemu/qmp_types.h"

namespace hearth {

// Deepest JSON nesting accepted from QEMU or a guest.
constexpr size_t kQemuJsonMaxDepth = 64;

struct QmpLine {
  enum class Kind { kNoise, kEvent, kReturn, kError };
  Kind kind = Kind::kNoise;  // kNoise: not JSON, too deep, or none of the members below
  nlohmann::json value;      // kReturn: the "return" member; kEvent: the whole message
  std::string error;         // kError: QEMU's "desc" (or "unknown error")
};
QmpLine ReadQmpLine(std::string_view line);

// True if `line` (0xFF delimiter bytes allowed) is the reply {"return": id} to guest-sync.
bool IsQgaSyncReply(std::string_view line, int64_t id);
// A guest agent command's "return" value (null if absent); an "error" member, a line that
// is not a JSON object, or one nested deeper than kQemuJsonMaxDepth is an error naming `command`.
Result<nlohmann::json> ReadQgaReply(std::string_view line, const std::string& command);

// Typed readings of QMP "return" values hearth uses, for any shape QEMU may send.
// query-status: the run state ("running", "paused", ...), or "" if the reply has none.
std::string QmpRunState(const nlohmann::json& ret);
std::optional<BlockIoTotals> SumBlockStats(const nlohmann::json& ret);
// An event message's "event" member, or "".
std::string QmpEventName(const nlohmann::json& event);
// A MIGRATION event's data.status ("setup", "active", "completed", "failed", ...), or "".
std::string MigrationEventStatus(const nlohmann::json& event);
// query-migrate: "error-desc" when the migration failed, or "".
std::string MigrationErrorDesc(const nlohmann::json& ret);
// qom-get of /machine's "type" ("pc-i440fx-7.2-machine"): the machine type name an alias
// such as "pc" resolved to ("pc-i440fx-7.2"), or "". (query-machines marks the current one
// only from QEMU 8 on.)
std::string MachineTypeFromQom(const nlohmann::json& ret);

// A block job event's fields (BLOCK_JOB_READY, BLOCK_JOB_COMPLETED, BLOCK_JOB_ERROR,
// BLOCK_JOB_CANCELLED): data.device is the job id; `error` is set on a failed completion.
struct BlockJobEvent {
  std::string job;     // data.device ("" if absent)
  std::string error;   // BLOCK_JOB_COMPLETED: data.error; BLOCK_JOB_ERROR: data.operation
  uint64_t len = 0, offset = 0;
};
BlockJobEvent ReadBlockJobEvent(const nlohmann::json& event);
// query-block-jobs: the job `job`'s progress (offset of len bytes, ready), or nullopt.
struct BlockJobProgress {
  uint64_t len = 0, offset = 0;
  bool ready = false;
};
std::optional<BlockJobProgress> FindBlockJob(const nlohmann::json& ret, const std::string& job);
// query-block: the root node name of the drive attached to the device `qdev_id` ("scsi0"),
// or "". QEMU names the device by its id ("scsi0") or, for virtio-blk, by its QOM path
// ("/machine/peripheral/virtio0/virtio-backend").
std::string BlockNodeOfDevice(const nlohmann::json& ret, const std::string& qdev_id);

}  // namespace hearth
