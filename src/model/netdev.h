// NIC strings (netN): "virtio=BC:24:11:4F:2A:9E,bridge=vmbr0,firewall=1,tag=20".
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "model/property_string.h"

namespace hearth {

struct NetDev {
  std::string model;    // virtio, e1000, ...
  std::string macaddr;  // upper-case, may be empty before a MAC is assigned
  PropertyMap opts;     // bridge, tag, trunks, firewall, link_down, rate, mtu, queues

  std::string Bridge() const;
  bool LinkDown() const;
};

const PropertyFormat& NetDevFormat();

// How a running VM takes a change of its NIC from `before` to `after`, as qemu-server's
// vmconfig_update_net decides: a different model, MAC, queues or MTU (or a NIC without a
// bridge on either side) needs the device replaced (hotplug); anything else (bridge, tag,
// trunks, firewall, rate, link_down) is applied to the tap and the link in place (kLive).
enum class NicChange { kNone, kLive, kReplace };
NicChange ClassifyNicChange(const NetDev& before, const NetDev& after);

// The VLAN ids of a trunks value ("10;20-22" -> 10 20 21 22), ascending, no repeats; ids
// outside 1-4094 and malformed items are left out (the format check refused them already).
std::vector<int> ExpandTrunks(std::string_view trunks);

// Accepts "<model>=<MAC>,..." and "model=<model>,macaddr=<MAC>,..." and "<model>,...".
Result<NetDev> ParseNetDev(std::string_view text);
// Canonical: "<model>=<MAC>" first, then the other keys sorted.
std::string PrintNetDev(const NetDev& nic);

// A unicast, locally meaningful MAC with Proxmox's default prefix BC:24:11 and three
// caller-supplied random bytes (model/ does no I/O; the caller brings the randomness).
std::string MakeMac(const std::array<uint8_t, 3>& random);

bool IsValidUnicastMac(std::string_view mac);

}  // namespace hearth
