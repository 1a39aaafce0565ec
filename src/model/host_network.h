// The host network configuration hearth manages (GET/POST/PUT/DELETE /nodes/{node}/network),
// in Proxmox's shape: one entry per interface, keyed by the option names of pve-common's
// PVE/Network/Interfaces.pm (`type`, `autostart`, `bridge_ports`, `bridge_vlan_aware`,
// `slaves`, `bond_mode`, `vlan-raw-device`, `address`, `netmask` (bits), `gateway`, ...;
// docs/reference/pve-network.md). Pure: parsing, checks and rendering, no I/O.
//
// Values are strings, as Proxmox stores them; `cidr`/`cidr6` are never stored (they are split
// into `address` + `netmask` when set and recomputed when shown).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace hearth {

struct NetIface {
  std::string name;
  std::map<std::string, std::string> opts;
  // Hearth did not create this interface (a NIC, or a bridge that was there before): it was
  // adopted, so removing it from the configuration releases it instead of deleting the link.
  bool adopted = false;

  std::string Get(const std::string& key) const {
    auto it = opts.find(key);
    return it == opts.end() ? "" : it->second;
  }
  bool Has(const std::string& key) const { return opts.count(key) > 0; }
  std::string type() const { return Get("type"); }
  bool autostart() const { return Get("autostart") == "1"; }
  bool vlan_aware() const { return Has("bridge_vlan_aware") && Get("bridge_vlan_aware") != "0"; }
  // bridge_ports (bridge) or slaves (bond): split, deduplicated and sorted, as Proxmox.
  std::vector<std::string> Ports() const;
  // "10.0.0.1/24" from address + netmask, or "" (likewise cidr6).
  std::string Cidr() const;
  std::string Cidr6() const;
  // The vlan's raw device and id: from the name for "X.N" (as Proxmox), else the options.
  std::string VlanRawDevice() const;
  int VlanId() const;
  int Mtu() const;  // 0: not set
};

// The whole configuration of one node: interfaces by name.
struct HostNetConfig {
  std::map<std::string, NetIface> ifaces;

  const NetIface* Find(const std::string& name) const {
    auto it = ifaces.find(name);
    return it == ifaces.end() ? nullptr : &it->second;
  }
  bool operator==(const HostNetConfig& o) const { return ToJson() == o.ToJson(); }
  // The stored form (JSON text), and back. FromJson fails with kInternal on a damaged record.
  std::string ToJson() const;
  static Result<HostNetConfig> FromJson(const std::string& text);
  // As /etc/network/interfaces would say it (Proxmox's writer order and line shapes, §4.3),
  // for the `changes` diff a client shows as pending changes.
  std::string InterfacesText() const;
};

// The kinds of interface hearth can create, and the ones it can only adopt.
bool CreatableIfaceType(const std::string& type);  // bridge, bond, vlan

// Formats of docs/reference/pve-network.md §6. Each returns "" or the error text Proxmox
// gives (without its "invalid format - " prefix where it adds one).
std::string CheckIfaceName(const std::string& v);        // pve-iface
std::string CheckIfaceList(const std::string& v);        // pve-iface-list
std::string CheckVlanIdOrRangeList(const std::string& v);  // pve-vlan-id-or-range-list
std::string CheckIpv4Mask(const std::string& v);         // ipv4mask (dotted)
std::string CheckCidr4(const std::string& v);            // CIDRv4, prefix 8-32
std::string CheckCidr6(const std::string& v);            // CIDRv6, prefix 8-128
// The prefix length of a dotted mask ("255.255.255.0" -> 24), or -1.
int MaskBits(const std::string& dotted);
// "2-4094,100;200" -> "2-4094 100 200" (bridge_vids, normalised as Proxmox does on POST).
std::string NormaliseVlanList(const std::string& v);
// The VLAN ids a vids list names, expanded (ranges included), ascending.
std::vector<int> ExpandVlanList(const std::string& v);

}  // namespace hearth
