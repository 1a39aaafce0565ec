// The guest agent, through the VM's virtio-serial channel.
#include "core/strings.h"
#include "model/property_string.h"
#include "vms/vm_service.h"

namespace hearth {

Result<nlohmann::json> VmService::AgentCommand(int vmid, const std::string& command, const nlohmann::json& args,
                                               std::chrono::seconds timeout, bool expect_reply) {
  HEARTH_ASSIGN_OR_RETURN(VmStatusInfo st, CurrentStatus(vmid));
  if (!st.agent) return Fail(Internal("No QEMU guest agent configured"));
  if (st.status != "running") return Fail(Internal("VM " + std::to_string(vmid) + " is not running"));
  return qemu_.AgentExecute(vmid, command, args, timeout, expect_reply);
}

}  // namespace hearth
