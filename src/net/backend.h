// NetBackend: the host-side plumbing of VM NICs. A NIC on a bridge gets a tap named
// tap<vmid>i<n>, enslaved to the bridge through netlink, as Proxmox's PVE::Network::tap_plug
// (pve-common src/PVE/Network.pm) does it:
// - on a VLAN-aware bridge, the tap's bridge VLAN entries: `tag` as PVID+untagged (1 without
//   a tag), plus `trunks` as tagged VLANs, or all of 2-4094 when there is neither;
// - on a bridge without VLAN filtering, a `tag` puts the tap on the bridge <bridge>v<tag>,
//   made on demand with <port>.<tag> VLAN links of the bridge's physical ports; `trunks`
//   need a VLAN-aware bridge;
// - `rate` (MB/s, 1 MB = 1,048,576 bytes, as Proxmox) limits both directions: an HTB class
//   on the tap's egress (traffic to the guest) and, for traffic from the guest, the tap's
//   ingress redirected to an ifb device (ifb<vmid>i<n>) with the same HTB class (Proxmox
//   polices ingress; the police action is missing from some kernels, ifb is not). Burst
//   1 MiB, as Proxmox.
// Bridges themselves are the host network's (net/host_network.h); here they must exist.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace hearth {

struct TapSpec {
  std::string name;    // tap100i0
  std::string bridge;  // must exist and be a bridge
  int mtu = 0;         // 0 = the bridge's MTU
  bool multi_queue = false;
  int tag = 0;              // 802.1Q VLAN id 1-4094; 0 = none
  std::vector<int> trunks;  // tagged VLAN ids (expanded), VLAN-aware bridges only
  double rate = 0;          // MB/s in each direction; 0 = unlimited
};

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  // Creates (or re-creates) the tap, then PlugTap.
  virtual Status CreateTap(const TapSpec& spec) = 0;
  // Attaches an existing tap to spec.bridge with its VLANs and rate, and brings it up (also
  // to move a running VM's NIC to another bridge or VLAN). Errors name what the kernel
  // lacks (bridge VLAN filtering, 802.1Q, ifb, HTB).
  virtual Status PlugTap(const TapSpec& spec) = 0;
  // Takes the tap off its bridge (and its rate limit off); the tap stays.
  virtual Status UnplugTap(const std::string& name) = 0;
  // Sets (rate > 0) or removes (0) the tap's rate limit, in MB/s.
  virtual Status SetTapRate(const std::string& name, double rate) = 0;
  // Deletes the tap and its ifb device; a missing tap is not an error.
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
