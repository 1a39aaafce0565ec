#include "net/netlink/netlink_backend.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/route/link.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "net/net_plan.h"
#include "net/netlink/netlink_host_links.h"
#include "net/netlink/tc_rate.h"

namespace hearth {


namespace {

struct NlSocket {
  nl_sock* sock = nl_socket_alloc();
  ~NlSocket() {
    if (sock) nl_socket_free(sock);
  }
  Status Connect() {
    if (!sock) return Fail(Internal("netlink: out of memory"));
    int err = nl_connect(sock, NETLINK_ROUTE);
    if (err < 0) return Fail(Unavailable(std::string("netlink connect: ") + nl_geterror(err)));
    return Ok();
  }
};

struct LinkPtr {
  rtnl_link* link = nullptr;
  ~LinkPtr() {
    if (link) rtnl_link_put(link);
  }
};

// Looks the bridge up and checks it really is one.
Status FindBridge(nl_sock* sock, const std::string& bridge, LinkPtr& out) {
  if (rtnl_link_get_kernel(sock, 0, bridge.c_str(), &out.link) < 0)
    return Fail(FailedPrecondition("bridge '" + bridge + "' does not exist"));
  const char* type = rtnl_link_get_type(out.link);
  if (!type || std::strcmp(type, "bridge") != 0)
    return Fail(FailedPrecondition("interface '" + bridge + "' is not a bridge"));
  return Ok();
}

const KernelLink* Find(const KernelState& k, const std::string& name) {
  for (const auto& l : k.links)
    if (l.name == name) return &l;
  return nullptr;
}

// tap100i0 -> ifb100i0: the device that carries the tap's ingress for shaping.
std::string IfbName(const std::string& tap) { return "ifb" + tap.substr(tap.size() > 3 ? 3 : 0); }

Status VlanBridgePorts(NetlinkHostLinks& links, const KernelState& kernel, const KernelLink& br, const std::string& name,
                       const std::vector<const KernelLink*>& ports, int tag);

// PVE::Network::activate_bridge_vlan: the bridge <bridge>v<tag>, with a VLAN link
// <port>.<tag> of each of the bridge's physical ports (NICs, bonds) as its ports, up, with
// the bridge's MTU. Made on demand, kept while it exists (other VMs may use it).
Result<std::string> VlanBridge(NetlinkHostLinks& links, const KernelState& kernel, const KernelLink& br, int tag) {
  std::string name = br.name + "v" + std::to_string(tag);
  if (name.size() >= IFNAMSIZ) return Fail(FailedPrecondition("interface name '" + name + "' is too long"));
  std::vector<const KernelLink*> ports;
  for (const auto& l : kernel.links)
    if (l.master == br.name && !IsGuestPlumbing(l.name) && (l.kind.empty() || l.kind == "veth" || l.kind == "bond"))
      ports.push_back(&l);
  if (ports.empty()) return Fail(FailedPrecondition("no physical interface on bridge '" + br.name + "'"));
  bool made = !Find(kernel, name);
  if (made) HEARTH_TRY(links.CreateLink({name, "bridge", "", 0, ""}));
  auto done = VlanBridgePorts(links, kernel, br, name, ports, tag);
  if (!done && made) (void)links.DeleteLink(name);  // no empty VLAN bridge left behind
  if (!done) return Fail(std::move(done.error()));
  return name;
}

Status VlanBridgePorts(NetlinkHostLinks& links, const KernelState& kernel, const KernelLink& br, const std::string& name,
                       const std::vector<const KernelLink*>& ports, int tag) {
  HEARTH_TRY(links.SetMtu(name, br.mtu));
  for (const KernelLink* p : ports) {
    std::string vlan = p->name + "." + std::to_string(tag);
    if (vlan.size() >= IFNAMSIZ) return Fail(FailedPrecondition("interface name '" + vlan + "' is too long"));
    const KernelLink* have = Find(kernel, vlan);
    if (!have) {
      HEARTH_TRY(links.CreateLink({vlan, "vlan", p->name, tag, ""}).map_error([&](Error e) {
        return Error(e.code, "can't add vlan tag " + std::to_string(tag) + " to interface " + p->name + " - " + e.message);
      }));
    } else if (!have->master.empty() && have->master != name) {
      return Fail(FailedPrecondition("interface " + vlan + " already exist in bridge " + have->master));
    }
    HEARTH_TRY(links.SetUp(vlan, true));
    if (!have || have->master != name) HEARTH_TRY(links.SetMaster(vlan, name));
  }
  return links.SetUp(name, true);
}

}  // namespace

Status NetlinkBackend::CheckBridge(const std::string& bridge) {
  NlSocket nl;
  HEARTH_TRY(nl.Connect());
  LinkPtr br;
  return FindBridge(nl.sock, bridge, br);
}

Status NetlinkBackend::CreateTap(const TapSpec& spec) {
  if (spec.name.size() >= IFNAMSIZ) return Fail(InvalidArgument("tap name too long: " + spec.name));
  NlSocket nl;
  HEARTH_TRY(nl.Connect());
  LinkPtr br;
  HEARTH_TRY(FindBridge(nl.sock, spec.bridge, br));

  // A leftover tap from a VM that died is replaced.
  (void)DeleteTap(spec.name);
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Fail(Unavailable(std::string("open /dev/net/tun: ") + strerror(errno)));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (spec.multi_queue ? IFF_MULTI_QUEUE : 0);
  std::strncpy(ifr.ifr_name, spec.name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0) {
    int e = errno;
    close(fd);
    return Fail(Internal("create tap " + spec.name + ": " + strerror(e)));
  }
  close(fd);

  if (auto plugged = PlugTap(spec); !plugged) {
    (void)DeleteTap(spec.name);
    return plugged;
  }
  return Ok();
}

Status NetlinkBackend::PlugTap(const TapSpec& spec) {
  NetlinkHostLinks links;
  HEARTH_ASSIGN_OR_RETURN(KernelState kernel, links.Read());
  const KernelLink* br = Find(kernel, spec.bridge);
  if (!br) return Fail(FailedPrecondition("bridge '" + spec.bridge + "' does not exist"));
  if (br->kind != "bridge") return Fail(FailedPrecondition("interface '" + spec.bridge + "' is not a bridge"));
  if (!Find(kernel, spec.name)) return Fail(NotFound("tap " + spec.name + " does not exist"));
  std::string bridge = spec.bridge;
  if (!br->vlan_filtering) {
    // PVE::Network::tap_plug: without VLAN filtering a tag means the bridge <bridge>v<tag>.
    if (!spec.trunks.empty()) return Fail(FailedPrecondition("vlan aware feature need to be enabled to use trunks"));
    if (spec.tag) {
      HEARTH_ASSIGN_OR_RETURN(bridge, VlanBridge(links, kernel, *br, spec.tag));
    }
  }
  if (bridge != spec.bridge) {
    HEARTH_ASSIGN_OR_RETURN(kernel, links.Read());
  }
  const KernelLink* target = Find(kernel, bridge);
  if (!target) return Fail(Internal("bridge '" + bridge + "' vanished"));
  unsigned mtu = spec.mtu > 0 ? static_cast<unsigned>(spec.mtu) : target->mtu;
  HEARTH_TRY(links.SetMtu(spec.name, mtu));
  HEARTH_TRY(links.SetMaster(spec.name, bridge).map_error([&](Error e) {
    return Error(e.code, "attach " + spec.name + " to " + bridge + ": " + e.message);
  }));
  if (target->vlan_filtering) {
    // The bridge gave the new port VLAN 1 as PVID; Proxmox replaces its entries.
    std::vector<int> all;
    for (int v = 1; v <= 4094; ++v) all.push_back(v);
    HEARTH_TRY(links.SetPortVlans(spec.name, false, all, 0));
    std::vector<int> tagged = spec.trunks;
    if (tagged.empty() && !spec.tag)
      for (int v = 2; v <= 4094; ++v) tagged.push_back(v);
    HEARTH_TRY(links.SetPortVlans(spec.name, true, tagged, spec.tag ? spec.tag : 1));
  }
  HEARTH_TRY(links.SetUp(spec.name, true));
  return SetTapRate(spec.name, spec.rate);
}

Status NetlinkBackend::UnplugTap(const std::string& name) {
  NetlinkHostLinks links;
  HEARTH_ASSIGN_OR_RETURN(KernelState kernel, links.Read());
  const KernelLink* tap = Find(kernel, name);
  if (!tap) return Ok();
  if (!tap->master.empty()) HEARTH_TRY(links.SetMaster(name, ""));
  return SetTapRate(name, 0);
}

Status NetlinkBackend::SetTapRate(const std::string& name, double rate) {
  std::string ifb = IfbName(name);
  HEARTH_TRY(ClearTc(name));
  if (rate <= 0) {
    NetlinkHostLinks links;
    if (auto k = links.Read(); k && Find(*k, ifb)) return links.DeleteLink(ifb);
    return Ok();
  }
  // PVE::Network::tap_rate_limit: MB/s of 1,048,576 bytes, burst 1 MiB.
  auto bytes = static_cast<uint64_t>(rate * 1024 * 1024);
  constexpr uint32_t kBurst = 1024 * 1024;
  HEARTH_TRY(SetHtbRate(name, bytes, kBurst));  // to the guest
  HEARTH_TRY(EnsureIfb(ifb));                    // from the guest: its ingress, shaped on the ifb
  HEARTH_TRY(ClearTc(ifb));
  HEARTH_TRY(SetHtbRate(ifb, bytes, kBurst));
  return RedirectIngress(name, ifb);
}

Result<NetBackend::Counters> NetlinkBackend::TapCounters(const std::string& name) {
  NlSocket nl;
  HEARTH_TRY(nl.Connect());
  LinkPtr link;
  if (rtnl_link_get_kernel(nl.sock, 0, name.c_str(), &link.link) < 0) return Fail(NotFound("no interface " + name));
  return Counters{rtnl_link_get_stat(link.link, RTNL_LINK_RX_BYTES), rtnl_link_get_stat(link.link, RTNL_LINK_TX_BYTES)};
}

Status NetlinkBackend::DeleteTap(const std::string& name) {
  NlSocket nl;
  HEARTH_TRY(nl.Connect());
  if (LinkPtr ifb; rtnl_link_get_kernel(nl.sock, 0, IfbName(name).c_str(), &ifb.link) >= 0)
    (void)rtnl_link_delete(nl.sock, ifb.link);
  LinkPtr link;
  if (rtnl_link_get_kernel(nl.sock, 0, name.c_str(), &link.link) < 0) return Ok();
  int err = rtnl_link_delete(nl.sock, link.link);
  if (err < 0) return Fail(Internal("delete " + name + ": " + nl_geterror(err)));
  return Ok();
}

}  // namespace hearth
