// Applying a host network configuration as one transaction: PlanApply turns (what the kernel
// has now, the configuration applied before, the configuration wanted) into small kernel
// steps, each with the steps that undo it; ApplySteps runs them and, when one fails, undoes
// the ones that ran, newest first, so the host ends as it was. Pure planning; only
// ApplySteps touches the kernel, through HostLinks.
//
// What is converged, per interface of the wanted configuration (as ifupdown2's `ifreload -a`
// does for Proxmox): existence (bridge, bond, vlan), bridge STP and VLAN filtering, ports
// (a port is released only if the previous configuration put it there: VM taps and ports
// hearth never managed stay), MTU, addresses (exactly the configured ones; IPv6 link-local
// stays), up for `autostart`, and the default route per family. Interfaces that left the
// configuration are deleted if hearth created them and left alone if they were adopted.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/host_network.h"
#include "net/host_links.h"

namespace hearth {

struct NetOp {
  enum Kind {
    kCreate, kDelete, kMaster, kMtu, kUp, kStp, kVlanFiltering, kVlans, kAddAddress, kDeleteAddress,
    kAddRoute, kDeleteRoute
  };
  Kind kind = kUp;
  std::string name;  // the link
  std::string arg;   // master ("" = release), address, gateway
  unsigned num = 0;  // mtu
  bool flag = false;  // up, stp, vlan filtering, vlans on the bridge itself, route is IPv6
  LinkSpec spec;      // kCreate
  std::vector<int> vids;

  // "create bridge vmbr1", "vmbr1: add address 10.0.0.1/24", ... (task log lines, tests).
  std::string Describe() const;
};

struct NetStep {
  NetOp op;
  std::vector<NetOp> undo;  // run in order to take `op` back
};

std::vector<NetStep> PlanApply(const KernelState& now, const HostNetConfig& applied, const HostNetConfig& wanted);

// Runs `steps` in order, logging each. On the first failure it runs the undo steps of
// everything that ran, newest first (logging each; an undo that fails is logged and the
// rest still run), and returns the failure, with the failed step's description as context.
Status ApplySteps(HostLinks& links, const std::vector<NetStep>& steps,
                  const std::function<void(const std::string&)>& log);

// "fd00:0::1/64" -> "fd00::1/64"; "" for a malformed value.
std::string CanonicalCidr(const std::string& cidr);

// The IPv4 addresses the kernel deletes along with `cidr`, given the link's `addrs` in the
// kernel's order (a subnet's primary address first): if `cidr` is its subnet's primary, the
// later addresses with the same prefix length in the same subnet (net/ipv4/devinet.c,
// __inet_del_ifa, without the sysctl promote_secondaries); otherwise none.
// Links hearth never lists or takes as ports: VM taps (tap<vmid>i<n>), their ifb devices,
// and Proxmox's firewall plumbing (fwbr/fwpr/fwln).
bool IsGuestPlumbing(const std::string& name);

std::vector<std::string> Ipv4Secondaries(const std::vector<std::string>& addrs, const std::string& cidr);

}  // namespace hearth
