// NetBackend: the host-side plumbing of VM NICs. A NIC on a bridge gets a tap named
// tap<vmid>i<n>, enslaved to the bridge through netlink. Bridges, VLANs and the firewall are
// managed elsewhere (a later issue); here the bridge must already exist.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace hearth {

struct TapSpec {
  std::string name;    // tap100i0
  std::string bridge;  // must exist and be a bridge
  int mtu = 0;         // 0 = the bridge's MTU
  bool multi_queue = false;
};

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  // Creates (or re-creates) the tap, attaches it to the bridge and brings it up.
  virtual Status CreateTap(const TapSpec& spec) = 0;
  virtual Status DeleteTap(const std::string& name) = 0;
  virtual Status CheckBridge(const std::string& bridge) = 0;
  // Bytes through a tap, as the host counts them (host rx = guest tx).
  struct Counters {
    uint64_t rx_bytes = 0, tx_bytes = 0;
  };
  virtual Result<Counters> TapCounters(const std::string& name) = 0;
};

// tap<vmid>i<n>, as Proxmox names a VM's NIC taps.
inline std::string TapName(int vmid, int index) {
  return "tap" + std::to_string(vmid) + "i" + std::to_string(index);
}

}  // namespace hearth
