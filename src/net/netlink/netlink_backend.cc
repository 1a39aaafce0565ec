#include "net/netlink/netlink_backend.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/route/link.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

  LinkPtr tap, change;
  if (rtnl_link_get_kernel(nl.sock, 0, spec.name.c_str(), &tap.link) < 0) {
    (void)DeleteTap(spec.name);
    return Fail(Internal("tap " + spec.name + " vanished after creation"));
  }
  change.link = rtnl_link_alloc();
  rtnl_link_set_master(change.link, rtnl_link_get_ifindex(br.link));
  unsigned mtu = spec.mtu > 0 ? static_cast<unsigned>(spec.mtu) : rtnl_link_get_mtu(br.link);
  rtnl_link_set_mtu(change.link, mtu);
  rtnl_link_set_flags(change.link, IFF_UP);
  int err = rtnl_link_change(nl.sock, tap.link, change.link, 0);
  if (err < 0) {
    (void)DeleteTap(spec.name);
    return Fail(Internal("attach " + spec.name + " to " + spec.bridge + ": " + nl_geterror(err)));
  }
  return Ok();
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
  LinkPtr link;
  if (rtnl_link_get_kernel(nl.sock, 0, name.c_str(), &link.link) < 0) return Ok();
  int err = rtnl_link_delete(nl.sock, link.link);
  if (err < 0) return Fail(Internal("delete " + name + ": " + nl_geterror(err)));
  return Ok();
}

}  // namespace hearth
