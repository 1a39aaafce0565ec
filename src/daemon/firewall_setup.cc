#include "daemon/firewall_setup.h"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>

#include "core/strings.h"
#include "model/netdev.h"
#include "model/vm_config.h"

namespace hearth {

std::string NetworkOfCidr(const std::string& cidr) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) return "";
  std::string addr = cidr.substr(0, slash);
  int bits = std::atoi(cidr.c_str() + slash + 1);
  int family = addr.find(':') == std::string::npos ? AF_INET : AF_INET6;
  unsigned char buf[16] = {};
  int len = family == AF_INET ? 4 : 16;
  if (inet_pton(family, addr.c_str(), buf) != 1 || bits < 0 || bits > len * 8) return "";
  for (int i = 0; i < len; ++i) {
    int keep = std::max(0, std::min(8, bits - i * 8));
    buf[i] &= static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  char text[INET6_ADDRSTRLEN];
  if (!inet_ntop(family, buf, text, sizeof text)) return "";
  return std::string(text) + "/" + std::to_string(bits);
}

std::unique_ptr<FirewallService> MakeFirewall(Store& store, NftBackend& nft, VmService& vms, HostLinks& links,
                                              const std::string& node, int api_port) {
  FirewallDeps deps{store, nft, node, nullptr, nullptr, nullptr, {}, nullptr};
  deps.firewalled_nics = [&store] {
    std::vector<FwNic> out;
    auto records = store.ListVms();
    if (!records) return out;
    for (const auto& rec : *records) {
      auto conf = ParseConfFile(rec.conf);
      if (!conf) continue;
      for (const auto& [key, value] : conf->values) {
        if (key.rfind("net", 0) != 0) continue;
        auto idx = ParseInt(key.substr(3));
        auto nic = ParseNetDev(value);
        if (!idx || !nic || nic->Bridge().empty()) continue;
        if (auto fw = nic->opts.find("firewall"); fw != nic->opts.end() && fw->second == "1")
          out.push_back({rec.vmid, static_cast<int>(*idx), nic->macaddr});
      }
    }
    return out;
  };
  deps.vms_generation = [&vms] { return vms.Generation(); };
  deps.local_networks = [&links] {
    std::vector<std::string> out;
    auto kernel = links.Read();
    if (!kernel) return out;
    for (const auto& l : kernel->links) {
      if (l.name == "lo") continue;
      for (const auto& a : l.addrs)
        if (auto n = NetworkOfCidr(a); !n.empty() && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
  };
  deps.management_ports = {8006, 22};
  if (api_port > 0 && api_port != 8006) deps.management_ports.insert(deps.management_ports.begin(), api_port);
  deps.enable_bridge_netfilter = []() -> Status {
    for (const char* f : {"/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"}) {
      std::ofstream out(f);
      if (!out || !(out << "1\n") || !out.flush())
        return Fail(FailedPrecondition(std::string("cannot write ") + f +
                                       ": guest firewall rules need the kernel's br_netfilter (modprobe br_netfilter)"));
    }
    return Ok();
  };
  return std::make_unique<FirewallService>(std::move(deps));
}

}  // namespace hearth
