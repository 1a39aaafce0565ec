// HostLinks: what the host network service reads from and does to the kernel's links,
// addresses and default routes. Each call is one small kernel change; the service composes
// them into a transaction with undo steps (net/net_plan.h). The netlink adapter
// (netlink/netlink_host_links.h) works in whatever network namespace the daemon runs in;
// a fake (testing/fake_host_links.h) serves the unit tests.
//
// Errors: kFailedPrecondition when the running kernel cannot do it (no bonding, no 802.1Q,
// no bridge VLAN filtering), with a message that says so; kNotFound for a missing link;
// kInternal for other kernel refusals (the message carries the kernel's reason).
// Thread-safety: implementations hold no state between calls; callers serialise changes.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace hearth {

struct KernelLink {
  std::string name;
  int ifindex = 0;
  // rtnetlink's kind: "bridge", "bond", "vlan", "veth", "vxlan", "tun", ...; "" for a
  // physical NIC (no link info).
  std::string kind;
  unsigned mtu = 0;
  bool up = false;       // administratively up (IFF_UP)
  bool running = false;  // carrier (IFF_RUNNING)
  std::string master;    // the bridge or bond it is a port of, or ""
  std::string mac;
  std::vector<std::string> addrs;  // "10.0.0.1/24", "fd00::1/64"; IPv6 link-local left out
  std::vector<std::string> altnames;
  bool stp = false, vlan_filtering = false;  // bridges
  std::string vlan_parent;                   // vlans
  int vlan_id = 0;
  std::string bond_mode;  // bonds: "balance-rr", "active-backup", ...
};

struct KernelRoute {
  bool v6 = false;
  std::string gateway, dev;
};

struct KernelState {
  std::vector<KernelLink> links;
  std::vector<KernelRoute> default_routes;
  const KernelLink* Find(const std::string& name) const {
    for (const auto& l : links)
      if (l.name == name) return &l;
    return nullptr;
  }
};

// What CreateLink makes.
struct LinkSpec {
  std::string name;
  std::string kind;  // bridge, bond, vlan
  std::string vlan_parent;
  int vlan_id = 0;
  std::string bond_mode;
  // Bridges: the MAC it keeps ("aa:bb:cc:dd:ee:ff"), its first port's, so that the bridge's
  // MAC does not follow the lowest MAC among its ports (each VM tap that joins or leaves
  // would change it, and the LAN's ARP caches with it). "": a random local one.
  std::string mac;
};

class HostLinks {
 public:
  virtual ~HostLinks() = default;
  virtual Result<KernelState> Read() = 0;
  virtual Status CreateLink(const LinkSpec& spec) = 0;  // created down
  virtual Status DeleteLink(const std::string& name) = 0;
  virtual Status SetMaster(const std::string& name, const std::string& master) = 0;  // "" releases
  virtual Status SetMtu(const std::string& name, unsigned mtu) = 0;
  virtual Status SetUp(const std::string& name, bool up) = 0;
  virtual Status SetBridgeStp(const std::string& name, bool stp) = 0;
  virtual Status SetBridgeVlanFiltering(const std::string& name, bool on) = 0;
  // The VLANs a bridge port (or, with `self`, the bridge itself) carries: `vids` tagged,
  // plus VLAN 1 as PVID untagged, as ifupdown2 sets up a VLAN-aware bridge's ports.
  virtual Status SetBridgeVlans(const std::string& name, const std::vector<int>& vids, bool self) = 0;
  virtual Status AddAddress(const std::string& name, const std::string& cidr) = 0;
  virtual Status DeleteAddress(const std::string& name, const std::string& cidr) = 0;
  virtual Status AddDefaultRoute(const KernelRoute& route) = 0;
  virtual Status DeleteDefaultRoute(const KernelRoute& route) = 0;
};

}  // namespace hearth
