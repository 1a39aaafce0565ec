// NoCloud seed generation from a VM's cloud-init keys (ciuser, cipassword, sshkeys,
// ipconfigN, nameserver, searchdomain, ciupgrade) — what Proxmox puts on the cloud-init drive.
//
// Safety: every value that came from a user is emitted as a double-quoted, escaped scalar
// (JSON strings are YAML), so no input can add keys, list items or documents.
#pragma once

#include <map>
#include <string>

#include "core/result.h"
#include "model/vm_config.h"

namespace hearth {

struct NoCloudSeed {
  std::string user_data;       // "#cloud-config" document
  std::string meta_data;       // instance-id, local-hostname
  std::string network_config;  // network config version 1
  std::string vendor_data;     // empty unless cicustom vendor=
};

// `custom` holds the contents of cicustom snippets by kind ("user", "network", "meta",
// "vendor"); a present kind replaces the generated document, as in Proxmox.
Result<NoCloudSeed> RenderNoCloud(int vmid, const std::map<std::string, std::string>& config,
                                  const std::map<std::string, std::string>& custom = {});

// Decodes the percent-encoded `sshkeys` value into one key per element.
std::vector<std::string> DecodeSshKeys(const std::string& encoded);

// The drive key holding the cloud-init drive ("ide2"...), or "".
std::string CloudInitDriveKey(const std::map<std::string, std::string>& config);

// Netmask of an IPv4 prefix length ("24" -> "255.255.255.0").
std::string Ipv4Netmask(int prefix);

}  // namespace hearth
