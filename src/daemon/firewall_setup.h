// The firewall's wiring in the daemon: VMs' firewalled NICs from the Store, the node's own
// networks from the kernel, and br_netfilter switched on for guest rules.
#pragma once

#include <memory>
#include <string>

#include "firewall/firewall.h"
#include "net/host_links.h"
#include "state/store.h"
#include "vms/vm_service.h"

namespace hearth {

std::unique_ptr<FirewallService> MakeFirewall(Store& store, NftBackend& nft, VmService& vms, HostLinks& links,
                                              const std::string& node, int api_port);

// "10.1.2.3/24" -> "10.1.2.0/24" (IPv4 or IPv6); "" if it is not a CIDR.
std::string NetworkOfCidr(const std::string& cidr);

}  // namespace hearth
