// NIC strings (netN): "virtio=BC:24:11:4F:2A:9E,bridge=vmbr0,firewall=1,tag=20".
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

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

// Accepts "<model>=<MAC>,..." and "model=<model>,macaddr=<MAC>,..." and "<model>,...".
Result<NetDev> ParseNetDev(std::string_view text);
// Canonical: "<model>=<MAC>" first, then the other keys sorted.
std::string PrintNetDev(const NetDev& nic);

// A unicast, locally meaningful MAC with Proxmox's default prefix BC:24:11 and three
// caller-supplied random bytes (model/ does no I/O; the caller brings the randomness).
std::string MakeMac(const std::array<uint8_t, 3>& random);

bool IsValidUnicastMac(std::string_view mac);

}  // namespace hearth
