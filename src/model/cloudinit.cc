#include "model/cloudinit.h"

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "model/drive.h"
#include "model/netdev.h"
#include "model/property_string.h"
#include "model/vm_schema.h"
#include "model/volume_id.h"

namespace hearth {
namespace {

// A YAML double-quoted scalar: JSON string escaping is a valid subset.
std::string Q(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', true); }

std::string Get(const std::map<std::string, std::string>& c, const std::string& k, const std::string& d = "") {
  auto it = c.find(k);
  return it == c.end() ? d : it->second;
}

PropertyMap IpConfig(const std::string& value) {
  return ParsePropertyString(IpConfigFormat(), value).value_or(PropertyMap{});
}

}  // namespace

std::string Ipv4Netmask(int prefix) {
  uint32_t mask = prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
  return std::to_string(mask >> 24) + "." + std::to_string((mask >> 16) & 255) + "." +
         std::to_string((mask >> 8) & 255) + "." + std::to_string(mask & 255);
}

std::vector<std::string> DecodeSshKeys(const std::string& encoded) {
  std::vector<std::string> keys;
  auto decoded = PercentDecode(encoded, false);
  if (!decoded) return keys;
  for (const auto& line : Split(*decoded, '\n')) {
    std::string key(Trim(line));
    if (!key.empty() && key[0] != '#') keys.push_back(key);
  }
  return keys;
}

std::string CloudInitDriveKey(const std::map<std::string, std::string>& config) {
  for (const auto& [k, v] : config) {
    if (!DriveKey::Parse(k)) continue;
    std::string vol = DriveVolume(k, v);
    size_t colon = vol.find(':');
    if (colon == std::string::npos) continue;
    std::string volname = vol.substr(colon + 1);
    std::string file = volname.substr(volname.rfind('/') + 1);
    if (auto dn = ParseDiskName(file.substr(0, file.rfind('.'))); dn && dn->cloudinit) return k;
    if (auto dn = ParseDiskName(file); dn && dn->cloudinit) return k;
  }
  return "";
}

Result<NoCloudSeed> RenderNoCloud(int vmid, const std::map<std::string, std::string>& c,
                                  const std::map<std::string, std::string>& custom) {
  // The API accepts only UTF-8, but a config file edited by hand may hold anything, and the
  // YAML quoting (JSON escaping) cannot represent other bytes. Found by fuzzing.
  for (const auto& [k, v] : c)
    if ((IsCloudInitKey(k) || k == "name" || StartsWith(k, "net")) && !IsValidUtf8(v))
      return Fail(FieldError(k, "value must be valid UTF-8"));
  std::string citype = Get(c, "citype", "nocloud");
  if (citype != "nocloud") return Fail(FieldError("citype", "citype '" + citype + "' is not supported yet (use nocloud)"));
  NoCloudSeed seed;
  std::string hostname = Get(c, "name", "VM" + std::to_string(vmid));
  std::string search = Get(c, "searchdomain");
  std::vector<std::string> domains = SplitAny(search, ", ;");

  // user-data
  std::string u = "#cloud-config\n";
  u += "hostname: " + Q(hostname) + "\n";
  if (!domains.empty()) u += "fqdn: " + Q(hostname + "." + domains[0]) + "\n";
  u += "manage_etc_hosts: true\n";
  std::string user = Get(c, "ciuser");
  if (!user.empty()) u += "user: " + Q(user) + "\n";
  std::string password = Get(c, "cipassword");
  if (!password.empty()) {
    u += "password: " + Q(password) + "\n";
    u += "chpasswd:\n  expire: false\n";
    u += "ssh_pwauth: true\n";
  }
  auto keys = DecodeSshKeys(Get(c, "sshkeys"));
  if (!keys.empty()) {
    u += "ssh_authorized_keys:\n";
    for (const auto& k : keys) u += "  - " + Q(k) + "\n";
  }
  u += "users:\n  - default\n";
  bool upgrade = Get(c, "ciupgrade", "1") == "1";
  u += std::string("package_upgrade: ") + (upgrade ? "true" : "false") + "\n";
  seed.user_data = custom.count("user") ? custom.at("user") : u;

  // network-config (version 1), one entry per NIC, matched by MAC
  std::string n = "version: 1\nconfig:\n";
  for (int i = 0; i <= 31; ++i) {
    std::string net = Get(c, "net" + std::to_string(i));
    if (net.empty()) continue;
    auto nic = ParseNetDev(net);
    if (!nic || nic->macaddr.empty()) continue;
    n += "  - type: physical\n";
    n += "    name: " + Q("eth" + std::to_string(i)) + "\n";
    n += "    mac_address: " + Q(ToLower(nic->macaddr)) + "\n";
    PropertyMap ip = IpConfig(Get(c, "ipconfig" + std::to_string(i)));
    std::string subnets;
    if (ip.count("ip")) {
      if (ip["ip"] == "dhcp") {
        subnets += "      - type: dhcp4\n";
      } else {
        size_t slash = ip["ip"].find('/');
        subnets += "      - type: static\n";
        subnets += "        address: " + Q(ip["ip"].substr(0, slash)) + "\n";
        subnets += "        netmask: " + Q(Ipv4Netmask(std::stoi(ip["ip"].substr(slash + 1)))) + "\n";
        if (ip.count("gw")) subnets += "        gateway: " + Q(ip["gw"]) + "\n";
      }
    }
    if (ip.count("ip6")) {
      if (ip["ip6"] == "dhcp") {
        subnets += "      - type: dhcp6\n";
      } else if (ip["ip6"] == "auto") {
        subnets += "      - type: ipv6_slaac\n";
      } else {
        subnets += "      - type: static6\n";
        subnets += "        address: " + Q(ip["ip6"]) + "\n";
        if (ip.count("gw6")) subnets += "        gateway: " + Q(ip["gw6"]) + "\n";
      }
    }
    if (!subnets.empty()) n += "    subnets:\n" + subnets;
  }
  std::vector<std::string> servers = SplitAny(Get(c, "nameserver"), ", ;");
  if (!servers.empty() || !domains.empty()) {
    n += "  - type: nameserver\n";
    if (!servers.empty()) {
      n += "    address:\n";
      for (const auto& s : servers) n += "      - " + Q(s) + "\n";
    }
    if (!domains.empty()) {
      n += "    search:\n";
      for (const auto& d : domains) n += "      - " + Q(d) + "\n";
    }
  }
  seed.network_config = custom.count("network") ? custom.at("network") : n;

  // meta-data: a new instance-id whenever what we hand the guest changes, so cloud-init
  // applies the new settings at the next boot.
  std::string iid = ConfDigest(seed.user_data + "\n" + seed.network_config);
  std::string m = "instance-id: " + Q(iid) + "\nlocal-hostname: " + Q(hostname) + "\n";
  seed.meta_data = custom.count("meta") ? custom.at("meta") : m;
  if (custom.count("vendor")) seed.vendor_data = custom.at("vendor");
  return seed;
}

}  // namespace hearth
