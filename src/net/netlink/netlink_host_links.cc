#include "net/netlink/netlink_host_links.h"

#include <cstdio>
#include <random>

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "core/strings.h"
#include "net/netlink/rtnl_messages.h"

namespace hearth {
namespace {

// One NETLINK_ROUTE socket for one call: a request and its ACK, or a dump.
class Rtnl {
 public:
  Rtnl() {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd_ < 0) return;
    int one = 1;
    // Extended ACKs carry the kernel's reason ("Unknown device type"); capped ACKs do not
    // echo our request back.
    setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    timeval tv{10, 0};  // the kernel answers at once; a stuck socket must not hang an apply
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Rtnl() {
    if (fd_ >= 0) close(fd_);
  }

  // Sends a request; the kernel's errno (0 = done) and its extended-ACK message.
  Status Request(NlBytes msg, const std::string& what) {
    int err = 0;
    std::string reason;
    HEARTH_TRY(Exchange(std::move(msg), nullptr, &err, &reason));
    if (err == 0) return Ok();
    std::string text = what + ": " + std::strerror(err) + (reason.empty() ? "" : " (" + reason + ")");
    if (err == ENODEV) return Fail(NotFound(text));
    return Fail(MakeError(err == EOPNOTSUPP ? ErrorCode::kFailedPrecondition : ErrorCode::kInternal, text));
  }
  Status Dump(NlBytes msg, const std::function<void(nlmsghdr*)>& each) {
    int err = 0;
    std::string reason;
    HEARTH_TRY(Exchange(std::move(msg), &each, &err, &reason));
    if (err != 0) return Fail(Internal(std::string("netlink dump: ") + std::strerror(err)));
    return Ok();
  }

 private:
  Status Exchange(NlBytes msg, const std::function<void(nlmsghdr*)>* each, int* err, std::string* reason) {
    if (fd_ < 0) return Fail(Unavailable(std::string("netlink socket: ") + std::strerror(errno)));
    auto* h = reinterpret_cast<nlmsghdr*>(msg.data());
    h->nlmsg_seq = 1;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
      return Fail(Internal(std::string("netlink send: ") + std::strerror(errno)));
    std::vector<uint8_t> buf(1 << 16);
    for (;;) {
      ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(Internal(std::string("netlink receive: ") + std::strerror(errno)));
      int len = static_cast<int>(n);
      for (auto* r = reinterpret_cast<nlmsghdr*>(buf.data()); nlmsg_ok(r, len); r = nlmsg_next(r, &len)) {
        if (r->nlmsg_seq != 1) continue;
        if (r->nlmsg_type == NLMSG_DONE) return Ok();
        if (r->nlmsg_type == NLMSG_ERROR) {
          if (r->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return Fail(Internal("netlink: short error message"));
          auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(r));
          *err = -e->error;
          if ((r->nlmsg_flags & NLM_F_ACK_TLVS) && r->nlmsg_len > NLMSG_LENGTH(sizeof(nlmsgerr))) {
            auto* tlv = reinterpret_cast<nlattr*>(reinterpret_cast<uint8_t*>(e) + sizeof(nlmsgerr));
            int rem = static_cast<int>(r->nlmsg_len - NLMSG_LENGTH(sizeof(nlmsgerr)));
            for (; nla_ok(tlv, rem); tlv = nla_next(tlv, &rem))
              if (nla_type(tlv) == NLMSGERR_ATTR_MSG && nla_len(tlv) > 0)
                *reason = std::string(static_cast<const char*>(nla_data(tlv)), strnlen(static_cast<const char*>(nla_data(tlv)), nla_len(tlv)));
          }
          return Ok();
        }
        if (each) (*each)(r);
      }
    }
  }
  int fd_ = -1;
};

// Attribute readers that check the payload is as long as the value.
uint32_t U32(nlattr* a) { return a && nla_len(a) >= 4 ? nla_get_u32(a) : 0; }
uint16_t U16(nlattr* a) { return a && nla_len(a) >= 2 ? nla_get_u16(a) : 0; }
uint8_t U8(nlattr* a) { return a && nla_len(a) >= 1 ? nla_get_u8(a) : 0; }
std::string Str(nlattr* a) {
  if (!a || nla_len(a) <= 0) return "";
  auto* p = static_cast<const char*>(nla_data(a));
  return std::string(p, strnlen(p, nla_len(a)));
}

KernelLink ParseLink(nlmsghdr* h, std::map<int, int>& vlan_parent_index) {
  KernelLink l;
  if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return l;
  auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(h));
  nlattr* tb[IFLA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) return l;
  l.ifindex = ifi->ifi_index;
  l.up = ifi->ifi_flags & IFF_UP;
  l.running = ifi->ifi_flags & IFF_RUNNING;
  l.name = Str(tb[IFLA_IFNAME]);
  l.mtu = U32(tb[IFLA_MTU]);
  if (tb[IFLA_MASTER]) l.master = std::to_string(U32(tb[IFLA_MASTER]));  // resolved to a name below
  if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6) {
    auto* m = static_cast<const uint8_t*>(nla_data(tb[IFLA_ADDRESS]));
    char text[18];
    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    l.mac = text;
  }
  if (tb[IFLA_PROP_LIST]) {
    nlattr* prop;
    int rem;
    nla_for_each_nested(prop, tb[IFLA_PROP_LIST], rem) if (nla_type(prop) == IFLA_ALT_IFNAME) l.altnames.push_back(Str(prop));
  }
  if (tb[IFLA_LINKINFO]) {
    nlattr* info[IFLA_INFO_MAX + 1] = {};
    if (nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr) == 0) {
      l.kind = Str(info[IFLA_INFO_KIND]);
      if (info[IFLA_INFO_DATA] && l.kind == "bridge") {
        nlattr* br[IFLA_BR_MAX + 1] = {};
        if (nla_parse_nested(br, IFLA_BR_MAX, info[IFLA_INFO_DATA], nullptr) == 0) {
          l.stp = U32(br[IFLA_BR_STP_STATE]) != 0;
          l.vlan_filtering = U8(br[IFLA_BR_VLAN_FILTERING]) != 0;
        }
      } else if (info[IFLA_INFO_DATA] && l.kind == "vlan") {
        nlattr* v[IFLA_VLAN_MAX + 1] = {};
        if (nla_parse_nested(v, IFLA_VLAN_MAX, info[IFLA_INFO_DATA], nullptr) == 0) l.vlan_id = U16(v[IFLA_VLAN_ID]);
        vlan_parent_index[l.ifindex] = static_cast<int>(U32(tb[IFLA_LINK]));
      } else if (info[IFLA_INFO_DATA] && l.kind == "bond") {
        nlattr* b[IFLA_BOND_MAX + 1] = {};
        if (nla_parse_nested(b, IFLA_BOND_MAX, info[IFLA_INFO_DATA], nullptr) == 0)
          l.bond_mode = BondModeName(U8(b[IFLA_BOND_MODE]));
      }
    }
  }
  return l;
}

std::string AddressText(int family, const void* data, int prefix) {
  char text[INET6_ADDRSTRLEN];
  if (!inet_ntop(family, data, text, sizeof text)) return "";
  return std::string(text) + "/" + std::to_string(prefix);
}

Result<int> IndexOf(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Fail(NotFound("no interface '" + name + "'"));
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(Internal(std::string("socket: ") + std::strerror(errno)));
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  int rc = ioctl(fd, SIOCGIFINDEX, &ifr);
  close(fd);
  if (rc < 0) return Fail(NotFound("no interface '" + name + "'"));
  return ifr.ifr_ifindex;
}

struct ParsedCidr {
  bool v6 = false;
  uint8_t addr[16] = {};
  uint8_t prefix = 0;
};

Result<ParsedCidr> ParseCidr(const std::string& cidr) {
  ParsedCidr p;
  size_t slash = cidr.find('/');
  std::string a = cidr.substr(0, slash);
  p.v6 = a.find(':') != std::string::npos;
  auto bits = slash == std::string::npos ? std::optional<uint64_t>(p.v6 ? 128 : 32) : ParseUint(cidr.substr(slash + 1));
  if (!bits || *bits > (p.v6 ? 128u : 32u) || inet_pton(p.v6 ? AF_INET6 : AF_INET, a.c_str(), p.addr) != 1)
    return Fail(InvalidArgument("not an address: '" + cidr + "'"));
  p.prefix = static_cast<uint8_t>(*bits);
  return p;
}

}  // namespace

Result<KernelState> NetlinkHostLinks::Read() {
  KernelState s;
  std::map<int, int> vlan_parent;
  {
    Rtnl nl;
    HEARTH_TRY(nl.Dump(GetLinksMessage(), [&](nlmsghdr* h) {
      KernelLink l = ParseLink(h, vlan_parent);
      if (!l.name.empty()) s.links.push_back(std::move(l));
    }));
  }
  std::map<int, KernelLink*> by_index;
  for (auto& l : s.links) by_index[l.ifindex] = &l;
  auto name_of = [&](int index) { return by_index.count(index) ? by_index[index]->name : ""; };
  for (auto& l : s.links) {
    if (!l.master.empty()) l.master = name_of(static_cast<int>(*ParseUint(l.master)));
    if (auto it = vlan_parent.find(l.ifindex); it != vlan_parent.end()) l.vlan_parent = name_of(it->second);
  }
  {
    Rtnl nl;
    HEARTH_TRY(nl.Dump(GetAddressesMessage(), [&](nlmsghdr* h) {
      if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return;
      auto* ifa = static_cast<ifaddrmsg*>(NLMSG_DATA(h));
      if (ifa->ifa_family == AF_INET6 && ifa->ifa_scope == RT_SCOPE_LINK) return;
      nlattr* tb[IFA_MAX + 1] = {};
      if (nlmsg_parse(h, sizeof(ifaddrmsg), tb, IFA_MAX, nullptr) < 0) return;
      nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
      size_t need = ifa->ifa_family == AF_INET ? 4 : 16;
      if (!a || static_cast<size_t>(nla_len(a)) < need || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)) return;
      auto it = by_index.find(static_cast<int>(ifa->ifa_index));
      if (it == by_index.end()) return;
      std::string text = AddressText(ifa->ifa_family, nla_data(a), ifa->ifa_prefixlen);
      if (!text.empty()) it->second->addrs.push_back(text);
    }));
  }
  {
    Rtnl nl;
    HEARTH_TRY(nl.Dump(GetRoutesMessage(), [&](nlmsghdr* h) {
      if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return;
      auto* rt = static_cast<rtmsg*>(NLMSG_DATA(h));
      if (rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST) return;
      if (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6) return;
      nlattr* tb[RTA_MAX + 1] = {};
      if (nlmsg_parse(h, sizeof(rtmsg), tb, RTA_MAX, nullptr) < 0) return;
      uint32_t table = tb[RTA_TABLE] ? U32(tb[RTA_TABLE]) : rt->rtm_table;
      size_t need = rt->rtm_family == AF_INET ? 4 : 16;
      if (table != RT_TABLE_MAIN || !tb[RTA_GATEWAY] || static_cast<size_t>(nla_len(tb[RTA_GATEWAY])) < need) return;
      KernelRoute r;
      r.v6 = rt->rtm_family == AF_INET6;
      r.gateway = AddressText(rt->rtm_family, nla_data(tb[RTA_GATEWAY]), 0);
      r.gateway = r.gateway.substr(0, r.gateway.find('/'));
      r.dev = name_of(static_cast<int>(U32(tb[RTA_OIF])));
      s.default_routes.push_back(r);
    }));
  }
  return s;
}

namespace {
bool ParseMac(const std::string& text, uint8_t out[6]) {
  unsigned v[6];
  if (text.size() != 17 || std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    return false;
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}
}  // namespace

Status NetlinkHostLinks::CreateLink(const LinkSpec& spec) {
  if (spec.name.empty() || spec.name.size() >= IFNAMSIZ) return Fail(InvalidArgument("bad interface name '" + spec.name + "'"));
  Rtnl nl;
  std::string what = "create " + spec.kind + " " + spec.name;
  Status done;
  if (spec.kind == "bridge") {
    uint8_t mac[6];
    if (!ParseMac(spec.mac, mac)) {
      // No port to take it from: a random locally administered unicast MAC, fixed from now on.
      std::random_device rd;
      for (auto& b : mac) b = static_cast<uint8_t>(rd());
      mac[0] = static_cast<uint8_t>((mac[0] & 0xfe) | 0x02);
    }
    done = nl.Request(NewBridgeMessage(spec.name, mac), what);
  } else if (spec.kind == "vlan") {
    HEARTH_ASSIGN_OR_RETURN(int parent, IndexOf(spec.vlan_parent));
    done = nl.Request(NewVlanMessage(spec.name, parent, static_cast<uint16_t>(spec.vlan_id)), what);
    if (!done && done.error().code == ErrorCode::kFailedPrecondition)
      return Fail(FailedPrecondition(what + ": the running kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q / "
                                            "module 8021q); use a VLAN-aware bridge or load the module"));
  } else if (spec.kind == "bond") {
    int mode = BondModeNumber(spec.bond_mode);
    if (mode < 0) return Fail(InvalidArgument("bond mode '" + spec.bond_mode + "' is not a Linux bond mode"));
    done = nl.Request(NewBondMessage(spec.name, static_cast<uint8_t>(mode)), what);
    if (!done && done.error().code == ErrorCode::kFailedPrecondition)
      return Fail(FailedPrecondition(what + ": the running kernel has no bonding driver (CONFIG_BONDING / module "
                                            "bonding)"));
  } else {
    return Fail(InvalidArgument("hearth cannot create interfaces of type '" + spec.kind + "'"));
  }
  return done;
}

Status NetlinkHostLinks::DeleteLink(const std::string& name) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  Rtnl nl;
  return nl.Request(DeleteLinkMessage(index), "delete " + name);
}

Status NetlinkHostLinks::SetMaster(const std::string& name, const std::string& master) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  int master_index = 0;
  if (!master.empty()) {
    HEARTH_ASSIGN_OR_RETURN(master_index, IndexOf(master));
  }
  Rtnl nl;
  return nl.Request(SetMasterMessage(index, master_index),
                    master.empty() ? "release " + name : "add " + name + " to " + master);
}

Status NetlinkHostLinks::SetMtu(const std::string& name, unsigned mtu) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  Rtnl nl;
  return nl.Request(SetMtuMessage(index, mtu), name + ": set mtu " + std::to_string(mtu));
}

Status NetlinkHostLinks::SetUp(const std::string& name, bool up) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  Rtnl nl;
  return nl.Request(SetUpMessage(index, up), name + (up ? ": up" : ": down"));
}

Status NetlinkHostLinks::SetBridgeStp(const std::string& name, bool stp) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  Rtnl nl;
  return nl.Request(BridgeOptionsMessage(index, stp, std::nullopt), name + ": stp");
}

Status NetlinkHostLinks::SetBridgeVlanFiltering(const std::string& name, bool on) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  Rtnl nl;
  auto done = nl.Request(BridgeOptionsMessage(index, std::nullopt, on), name + ": vlan filtering");
  // A kernel built without CONFIG_BRIDGE_VLAN_FILTERING answers EOPNOTSUPP.
  if (!done && done.error().code == ErrorCode::kFailedPrecondition)
    return Fail(FailedPrecondition("bridge_vlan_aware: " + name + ": the running kernel has no bridge VLAN filtering "
                                   "(CONFIG_BRIDGE_VLAN_FILTERING); use a bridge per VLAN instead"));
  return done;
}

Status NetlinkHostLinks::SetBridgeVlans(const std::string& name, const std::vector<int>& vids, bool self) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  Rtnl nl;
  return nl.Request(BridgeVlanMessage(index, vids, self), name + ": bridge vlans");
}

Status NetlinkHostLinks::SetPortVlans(const std::string& name, bool add, const std::vector<int>& vids, int pvid) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  Rtnl nl;
  return nl.Request(PortVlanMessage(add, index, vids, pvid), name + (add ? ": add bridge vlans" : ": delete bridge vlans"));
}

Status NetlinkHostLinks::AddAddress(const std::string& name, const std::string& cidr) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  HEARTH_ASSIGN_OR_RETURN(auto a, ParseCidr(cidr));
  Rtnl nl;
  return nl.Request(AddressMessage(true, index, a.v6, a.addr, a.prefix), name + ": add address " + cidr);
}

Status NetlinkHostLinks::DeleteAddress(const std::string& name, const std::string& cidr) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(name));
  HEARTH_ASSIGN_OR_RETURN(auto a, ParseCidr(cidr));
  Rtnl nl;
  return nl.Request(AddressMessage(false, index, a.v6, a.addr, a.prefix), name + ": delete address " + cidr);
}

Status NetlinkHostLinks::AddDefaultRoute(const KernelRoute& route) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(route.dev));
  HEARTH_ASSIGN_OR_RETURN(auto g, ParseCidr(route.gateway));
  Rtnl nl;
  return nl.Request(DefaultRouteMessage(true, g.v6, g.addr, index), "default route via " + route.gateway);
}

Status NetlinkHostLinks::DeleteDefaultRoute(const KernelRoute& route) {
  HEARTH_ASSIGN_OR_RETURN(int index, IndexOf(route.dev));
  HEARTH_ASSIGN_OR_RETURN(auto g, ParseCidr(route.gateway));
  Rtnl nl;
  return nl.Request(DefaultRouteMessage(false, g.v6, g.addr, index), "delete default route via " + route.gateway);
}

}  // namespace hearth
