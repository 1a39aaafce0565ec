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

// A YAML double-quoted scalar (YAML 1.2 section 5.7 escapes), written in ASCII only.
// JSON escaping is not enough: it writes a character above U+FFFF as a UTF-16 surrogate
// pair (\ud83d\ude00), which YAML reads as two invalid code points (yaml-cpp refuses the
// document, PyYAML builds a string cloud-init cannot encode). Found by fuzzing. So every
// control character is written as \xNN, other non-ASCII as \uXXXX or \UXXXXXXXX (which
// also keeps out what YAML forbids raw: C1 controls, U+2028/9, U+FEFF). The input is valid
// UTF-8 (RenderNoCloud checks first); a stray byte would be written as U+FFFD.
std::string Q(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  auto hex = [&](std::string& out, uint32_t v, int digits) {
    for (int d = digits - 1; d >= 0; --d) out += kHex[(v >> (4 * d)) & 15];
  };
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20 || c == 0x7F) {
        out += "\\x";
        hex(out, c, 2);
      } else {
        out += static_cast<char>(c);
      }
      continue;
    }
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    uint32_t cp = len == 4 ? c & 0x07 : len == 3 ? c & 0x0F : c & 0x1F;
    bool ok = len > 1 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok) {
      cp = 0xFFFD;
      len = 1;
    }
    i += len;
    if (cp > 0xFFFF) {
      out += "\\U";
      hex(out, cp, 8);
    } else {
      out += "\\u";
      hex(out, cp, 4);
    }
  }
  out += '"';
  return out;
}

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
