// The rtnetlink requests libnl-route 3.7 has no call for, built byte by byte: bridge options
// (IFLA_BR_STP_STATE, IFLA_BR_VLAN_FILTERING), bond and vlan links, and a port's bridge VLAN
// entries (AF_BRIDGE, IFLA_AF_SPEC / IFLA_BRIDGE_VLAN_INFO, as `bridge vlan add` sends them).
// Pure: the messages are returned, sequence number 0 and port id 0, host byte order (netlink
// is host-endian); the caller sets nlmsg_seq and sends. Unit-tested byte for byte
// (rtnl_messages_test.cc), which is how the VLAN code is tested on kernels without bridge
// VLAN filtering or 802.1Q (such as the CI machines).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hearth {

using NlBytes = std::vector<uint8_t>;

// RTM_NEWLINK, NLM_F_REQUEST|NLM_F_ACK|NLM_F_CREATE|NLM_F_EXCL: a new link of `kind`.
// vlan: `parent_ifindex` (IFLA_LINK) and IFLA_VLAN_ID; bond: IFLA_BOND_MODE (0-6).
// A bridge with `mac` (6 bytes) as IFLA_ADDRESS: the kernel then keeps that MAC
// (addr_assign_type SET) instead of taking its lowest port's.
NlBytes NewBridgeMessage(const std::string& name, const uint8_t* mac = nullptr);
NlBytes NewVlanMessage(const std::string& name, int parent_ifindex, uint16_t vlan_id);
NlBytes NewBondMessage(const std::string& name, uint8_t mode);

// RTM_NEWLINK, NLM_F_REQUEST|NLM_F_ACK on an existing bridge: IFLA_LINKINFO { kind "bridge",
// IFLA_INFO_DATA { IFLA_BR_STP_STATE u32 | IFLA_BR_VLAN_FILTERING u8 } }.
NlBytes BridgeOptionsMessage(int ifindex, std::optional<bool> stp, std::optional<bool> vlan_filtering);

// RTM_SETLINK (family AF_BRIDGE), NLM_F_REQUEST|NLM_F_ACK: IFLA_AF_SPEC { [IFLA_BRIDGE_FLAGS
// BRIDGE_FLAGS_SELF when `self`], VLAN 1 as PVID+untagged, then `vids` as IFLA_BRIDGE_VLAN_INFO
// entries, consecutive ids folded into RANGE_BEGIN/RANGE_END pairs }.
NlBytes BridgeVlanMessage(int ifindex, const std::vector<int>& vids, bool self);

// A bridge port's VLAN entries, as `bridge vlan add|del dev <port> vid ...` sends them:
// RTM_SETLINK (add) or RTM_DELLINK (delete), family AF_BRIDGE, NLM_F_REQUEST|NLM_F_ACK,
// IFLA_AF_SPEC { `vids` (ascending) as tagged IFLA_BRIDGE_VLAN_INFO entries folded into
// RANGE_BEGIN/RANGE_END pairs, then `pvid` (if not 0) as PVID+untagged }. A VM tap's entries
// (PVE::Network tap_plug): delete 1-4094, add the trunks (or 2-4094) and the tag (or 1) as PVID.
NlBytes PortVlanMessage(bool add, int ifindex, const std::vector<int>& vids, int pvid);

// RTM_GETLINK, NLM_F_REQUEST|NLM_F_DUMP, family AF_UNSPEC (to read IFLA_INFO_DATA of bridges).
NlBytes GetLinksMessage();

// Dumps (NLM_F_REQUEST|NLM_F_DUMP): every address, every route.
NlBytes GetAddressesMessage();
NlBytes GetRoutesMessage();

// NLM_F_REQUEST|NLM_F_ACK changes of one link: delete it, make it a port of `master_ifindex`
// (0 releases it), set its MTU, set or clear IFF_UP.
NlBytes DeleteLinkMessage(int ifindex);
NlBytes SetMasterMessage(int ifindex, int master_ifindex);
NlBytes SetMtuMessage(int ifindex, uint32_t mtu);
NlBytes SetUpMessage(int ifindex, bool up);

// RTM_NEWADDR (…|NLM_F_CREATE|NLM_F_EXCL) or RTM_DELADDR: IFA_LOCAL and IFA_ADDRESS =
// `addr` (4 or 16 bytes, network order).
NlBytes AddressMessage(bool add, int ifindex, bool v6, const uint8_t* addr, uint8_t prefix);
// RTM_NEWROUTE / RTM_DELROUTE of the default route in the main table: RTA_GATEWAY, RTA_OIF.
NlBytes DefaultRouteMessage(bool add, bool v6, const uint8_t* gateway, int oif);

// The bond mode number of a Proxmox bond_mode name ("balance-rr" 0 ... "balance-alb" 6), or -1.
int BondModeNumber(const std::string& name);
std::string BondModeName(int number);

}  // namespace hearth
