#include "net/netlink/rtnl_messages.h"

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>

namespace hearth {
namespace {

// Appends to a message, keeping every attribute 4-byte aligned and the header's length true.
class Writer {
 public:
  // A message with an ifinfomsg (links).
  Writer(uint16_t type, uint16_t flags, uint8_t family, int ifindex, unsigned if_flags = 0, unsigned if_change = 0) {
    ifinfomsg i{};
    i.ifi_family = family;
    i.ifi_index = ifindex;
    i.ifi_flags = if_flags;
    i.ifi_change = if_change;
    Start(type, flags, &i, sizeof i);
  }
  // A message with another family header (ifaddrmsg, rtmsg).
  Writer(uint16_t type, uint16_t flags, const void* header, size_t n) { Start(type, flags, header, n); }
  // Opens a nested attribute; returns its offset for End().
  size_t Begin(uint16_t type) {
    size_t at = bytes_.size();
    nlattr a{0, type};
    Put(&a, sizeof a);
    return at;
  }
  void End(size_t at) {
    uint16_t len = static_cast<uint16_t>(bytes_.size() - at);
    std::memcpy(&bytes_[at], &len, sizeof len);
  }
  void Attr(uint16_t type, const void* data, size_t n) {
    nlattr a{static_cast<uint16_t>(NLA_HDRLEN + n), type};
    Put(&a, sizeof a);
    Put(data, n);
    Align();
  }
  void U8(uint16_t type, uint8_t v) { Attr(type, &v, 1); }
  void U16(uint16_t type, uint16_t v) { Attr(type, &v, 2); }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, 4); }
  void Str(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  NlBytes Done() {
    uint32_t len = static_cast<uint32_t>(bytes_.size());
    std::memcpy(&bytes_[0], &len, sizeof len);
    return std::move(bytes_);
  }

 private:
  void Start(uint16_t type, uint16_t flags, const void* header, size_t n) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    Put(&h, sizeof h);
    Put(header, n);
    Align();
  }
  void Put(const void* data, size_t n) {
    auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + n);
  }
  void Align() { bytes_.resize(NLA_ALIGN(bytes_.size()), 0); }
  NlBytes bytes_;
};

constexpr uint16_t kCreate = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

}  // namespace

NlBytes NewBridgeMessage(const std::string& name, const uint8_t* mac) {
  Writer w(RTM_NEWLINK, kCreate, AF_UNSPEC, 0);
  w.Str(IFLA_IFNAME, name);
  if (mac) w.Attr(IFLA_ADDRESS, mac, 6);
  size_t info = w.Begin(IFLA_LINKINFO);
  w.Str(IFLA_INFO_KIND, "bridge");
  w.End(info);
  return w.Done();
}

NlBytes NewVlanMessage(const std::string& name, int parent_ifindex, uint16_t vlan_id) {
  Writer w(RTM_NEWLINK, kCreate, AF_UNSPEC, 0);
  w.Str(IFLA_IFNAME, name);
  w.U32(IFLA_LINK, static_cast<uint32_t>(parent_ifindex));
  size_t info = w.Begin(IFLA_LINKINFO);
  w.Str(IFLA_INFO_KIND, "vlan");
  size_t data = w.Begin(IFLA_INFO_DATA);
  w.U16(IFLA_VLAN_ID, vlan_id);
  w.End(data);
  w.End(info);
  return w.Done();
}

NlBytes NewBondMessage(const std::string& name, uint8_t mode) {
  Writer w(RTM_NEWLINK, kCreate, AF_UNSPEC, 0);
  w.Str(IFLA_IFNAME, name);
  size_t info = w.Begin(IFLA_LINKINFO);
  w.Str(IFLA_INFO_KIND, "bond");
  size_t data = w.Begin(IFLA_INFO_DATA);
  w.U8(IFLA_BOND_MODE, mode);
  w.End(data);
  w.End(info);
  return w.Done();
}

NlBytes BridgeOptionsMessage(int ifindex, std::optional<bool> stp, std::optional<bool> vlan_filtering) {
  Writer w(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, ifindex);
  size_t info = w.Begin(IFLA_LINKINFO);
  w.Str(IFLA_INFO_KIND, "bridge");
  size_t data = w.Begin(IFLA_INFO_DATA);
  if (stp) w.U32(IFLA_BR_STP_STATE, *stp ? 1 : 0);
  if (vlan_filtering) w.U8(IFLA_BR_VLAN_FILTERING, *vlan_filtering ? 1 : 0);
  w.End(data);
  w.End(info);
  return w.Done();
}

namespace {

// IFLA_AF_SPEC { [IFLA_BRIDGE_FLAGS SELF], [`first_pvid` as PVID+untagged], `vids` folded
// into ranges, [`last_pvid` as PVID+untagged] } on an AF_BRIDGE RTM_SETLINK or RTM_DELLINK.
NlBytes VlanEntries(uint16_t type, int ifindex, int first_pvid, const std::vector<int>& vids, int last_pvid,
                    bool self) {
  Writer w(type, NLM_F_REQUEST | NLM_F_ACK, AF_BRIDGE, ifindex);
  size_t spec = w.Begin(IFLA_AF_SPEC);
  if (self) w.U16(IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF);
  auto entry = [&](uint16_t flags, int vid) {
    bridge_vlan_info v{flags, static_cast<uint16_t>(vid)};
    w.Attr(IFLA_BRIDGE_VLAN_INFO, &v, sizeof v);
  };
  if (first_pvid) entry(BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED, first_pvid);
  for (size_t i = 0; i < vids.size();) {
    size_t j = i;
    while (j + 1 < vids.size() && vids[j + 1] == vids[j] + 1) ++j;
    if (j == i) {
      entry(0, vids[i]);
    } else {
      entry(BRIDGE_VLAN_INFO_RANGE_BEGIN, vids[i]);
      entry(BRIDGE_VLAN_INFO_RANGE_END, vids[j]);
    }
    i = j + 1;
  }
  if (last_pvid) entry(BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED, last_pvid);
  w.End(spec);
  return w.Done();
}

}  // namespace

NlBytes BridgeVlanMessage(int ifindex, const std::vector<int>& vids, bool self) {
  return VlanEntries(RTM_SETLINK, ifindex, 1, vids, 0, self);
}

NlBytes PortVlanMessage(bool add, int ifindex, const std::vector<int>& vids, int pvid) {
  std::vector<int> tagged;
  for (int v : vids)
    if (v != pvid) tagged.push_back(v);
  return VlanEntries(add ? RTM_SETLINK : RTM_DELLINK, ifindex, 0, tagged, pvid, false);
}

NlBytes GetLinksMessage() {
  Writer w(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, AF_UNSPEC, 0);
  return w.Done();
}

NlBytes GetAddressesMessage() {
  ifaddrmsg a{};
  Writer w(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &a, sizeof a);
  return w.Done();
}

NlBytes GetRoutesMessage() {
  rtmsg r{};
  Writer w(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &r, sizeof r);
  return w.Done();
}

NlBytes DeleteLinkMessage(int ifindex) {
  Writer w(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, ifindex);
  return w.Done();
}

NlBytes SetMasterMessage(int ifindex, int master_ifindex) {
  Writer w(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, ifindex);
  w.U32(IFLA_MASTER, static_cast<uint32_t>(master_ifindex));
  return w.Done();
}

NlBytes SetMtuMessage(int ifindex, uint32_t mtu) {
  Writer w(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, ifindex);
  w.U32(IFLA_MTU, mtu);
  return w.Done();
}

NlBytes SetUpMessage(int ifindex, bool up) {
  Writer w(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, ifindex, up ? IFF_UP : 0, IFF_UP);
  return w.Done();
}

NlBytes AddressMessage(bool add, int ifindex, bool v6, const uint8_t* addr, uint8_t prefix) {
  ifaddrmsg a{};
  a.ifa_family = v6 ? AF_INET6 : AF_INET;
  a.ifa_prefixlen = prefix;
  a.ifa_index = static_cast<uint32_t>(ifindex);
  Writer w(add ? RTM_NEWADDR : RTM_DELADDR, add ? kCreate : NLM_F_REQUEST | NLM_F_ACK, &a, sizeof a);
  size_t n = v6 ? 16 : 4;
  w.Attr(IFA_LOCAL, addr, n);
  w.Attr(IFA_ADDRESS, addr, n);
  return w.Done();
}

NlBytes DefaultRouteMessage(bool add, bool v6, const uint8_t* gateway, int oif) {
  rtmsg r{};
  r.rtm_family = v6 ? AF_INET6 : AF_INET;
  r.rtm_table = RT_TABLE_MAIN;
  r.rtm_protocol = RTPROT_STATIC;
  r.rtm_scope = add ? RT_SCOPE_UNIVERSE : RT_SCOPE_NOWHERE;
  r.rtm_type = add ? RTN_UNICAST : 0;
  Writer w(add ? RTM_NEWROUTE : RTM_DELROUTE, add ? kCreate : NLM_F_REQUEST | NLM_F_ACK, &r, sizeof r);
  w.Attr(RTA_GATEWAY, gateway, v6 ? 16 : 4);
  w.U32(RTA_OIF, static_cast<uint32_t>(oif));
  return w.Done();
}

namespace {
const char* const kBondModes[] = {"balance-rr", "active-backup", "balance-xor", "broadcast",
                                  "802.3ad",    "balance-tlb",   "balance-alb"};
}

int BondModeNumber(const std::string& name) {
  for (int i = 0; i < 7; ++i)
    if (name == kBondModes[i]) return i;
  return -1;
}

std::string BondModeName(int number) { return number >= 0 && number < 7 ? kBondModes[number] : ""; }

}  // namespace hearth
