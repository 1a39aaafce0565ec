// The firewall compiler: datacenter, node and VM configuration -> one nftables script that
// replaces hearth's tables in one transaction (`nft -f` semantics: all or nothing). Pure.
//
// Tables (hearth owns these two and never touches any other):
// - `inet hearth`: chain `input` and `output` (the node: loopback, conntrack, IPv6 neighbour
//   discovery, the node's rules then the datacenter's, the management ports from the node's
//   own networks, then the datacenter policy), and chain `forward` for guests (conntrack, then
//   per firewalled NIC an `-out` chain for what the guest sends and an `-in` chain for what
//   it receives, each ending in the VM's policy).
// - `bridge hearth`: bridged frames are seen by the inet forward hook through br_netfilter
//   with the bridge as their interface, so a chain at the bridge forward hook marks them
//   first with the NICs they come from and go to (meta mark: bits 16-31 the source NIC's
//   number, bits 0-15 the destination's); it also drops frames a guest sends with a MAC that
//   is not its NIC's (macfilter).
// Semantics follow pve-firewall (docs/reference/pve-firewall.md §5): rules in order, host
// before datacenter, policies DROP/ACCEPT as defaults, DHCP and NDP allowed unless turned
// off, a guest's outgoing ACCEPT lets the packet on to the receiving NIC's rules.
#pragma once

#include <string>
#include <vector>

#include "model/firewall.h"

namespace hearth {

struct FwNic {
  int vmid = 0, index = 0;  // netN
  std::string mac;          // BC:24:11:...
};

struct FwVm {
  int vmid = 0;
  FwFields options;
  std::vector<FwRule> rules;
  std::vector<FwNic> nics;  // the NICs with firewall=1
};

struct FwInputs {
  FwFields cluster_options, host_options;
  std::vector<FwRule> cluster_rules, host_rules;
  std::vector<FwVm> vms;
  // The node's own networks (CIDRs), from which the management ports stay open (Proxmox's
  // `local_network`), and those ports: hearth's API port and SSH.
  std::vector<std::string> local_networks;
  std::vector<int> management_ports;
};

// The script. With the datacenter firewall off it only removes hearth's tables.
std::string CompileFirewall(const FwInputs& in);

// tap<vmid>i<n>
std::string FwTapName(const FwNic& nic);

}  // namespace hearth
