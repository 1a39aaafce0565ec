#pragma once

#include "net/host_links.h"

namespace hearth {

// HostLinks over rtnetlink: requests built by rtnl_messages.h, replies read with libnl's
// bounds-checked attribute parser. Works in the daemon's network namespace. Each call opens
// its own socket, so calls from different threads do not interfere (the service serialises
// changes anyway).
class NetlinkHostLinks final : public HostLinks {
 public:
  Result<KernelState> Read() override;
  Status CreateLink(const LinkSpec& spec) override;
  Status DeleteLink(const std::string& name) override;
  Status SetMaster(const std::string& name, const std::string& master) override;
  Status SetMtu(const std::string& name, unsigned mtu) override;
  Status SetUp(const std::string& name, bool up) override;
  Status SetBridgeStp(const std::string& name, bool stp) override;
  Status SetBridgeVlanFiltering(const std::string& name, bool on) override;
  Status SetBridgeVlans(const std::string& name, const std::vector<int>& vids, bool self) override;
  Status AddAddress(const std::string& name, const std::string& cidr) override;
  Status DeleteAddress(const std::string& name, const std::string& cidr) override;
  Status AddDefaultRoute(const KernelRoute& route) override;
  Status DeleteDefaultRoute(const KernelRoute& route) override;

  // A bridge port's VLAN entries (PortVlanMessage): add or delete `vids` as tagged, then
  // `pvid` (if not 0) as PVID+untagged.
  Status SetPortVlans(const std::string& name, bool add, const std::vector<int>& vids, int pvid);
};

}  // namespace hearth
