#include "net/netlink/tc_rate.h"

#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/class.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/tc.h>

#include <algorithm>

namespace hearth {
namespace {

constexpr uint32_t kRoot = 0x00010000;      // 1:
constexpr uint32_t kClass = 0x00010001;     // 1:1
constexpr uint32_t kIngress = 0xffff0000;   // ffff:
constexpr uint16_t kFilterPrio = 50;        // as Proxmox's filter

struct Sock {
  nl_sock* sock = nl_socket_alloc();
  ~Sock() {
    if (sock) nl_socket_free(sock);
  }
};
template <typename T, void (*Put)(T*)>
struct Ref {
  T* p;
  explicit Ref(T* t) : p(t) {}
  ~Ref() {
    if (p) Put(p);
  }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
};
using LinkRef = Ref<rtnl_link, rtnl_link_put>;
using QdiscRef = Ref<rtnl_qdisc, rtnl_qdisc_put>;
using ClassRef = Ref<rtnl_class, rtnl_class_put>;
using ClsRef = Ref<rtnl_cls, rtnl_cls_put>;
using ActRef = Ref<rtnl_act, rtnl_act_put>;

Result<rtnl_link*> Open(Sock& s, const std::string& name) {
  if (!s.sock) return Fail(Internal("netlink: out of memory"));
  if (int err = nl_connect(s.sock, NETLINK_ROUTE); err < 0)
    return Fail(Unavailable(std::string("netlink connect: ") + nl_geterror(err)));
  rtnl_link* link = nullptr;
  if (rtnl_link_get_kernel(s.sock, 0, name.c_str(), &link) < 0) return Fail(NotFound("no interface '" + name + "'"));
  return link;
}

// A kernel without the module answers ENOENT ("Object not found") or EOPNOTSUPP.
Status Check(int err, const std::string& what, const char* module) {
  if (err >= 0) return Ok();
  std::string text = nl_geterror(err);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_OPNOTSUPP || err == -NLE_NOATTR)
    return Fail(FailedPrecondition(what + ": " + text + " (does the running kernel have " + module + "?)"));
  return Fail(Internal(what + ": " + text));
}

// A qdisc, class or filter object on `link` at `parent`, with `handle` (0: the kernel's) and `kind`.
void InitTc(rtnl_tc* tc, rtnl_link* link, uint32_t parent, uint32_t handle, const char* kind) {
  rtnl_tc_set_link(tc, link);
  rtnl_tc_set_parent(tc, parent);
  if (handle) rtnl_tc_set_handle(tc, handle);
  if (kind) rtnl_tc_set_kind(tc, kind);
}

}  // namespace

Status SetHtbRate(const std::string& name, uint64_t bytes_per_sec, uint32_t burst) {
  Sock s;
  HEARTH_ASSIGN_OR_RETURN(rtnl_link * l, Open(s, name));
  LinkRef link(l);
  QdiscRef q(rtnl_qdisc_alloc());
  InitTc(TC_CAST(q.p), link.p, TC_H_ROOT, kRoot, "htb");
  rtnl_htb_set_defcls(q.p, kClass);
  HEARTH_TRY(Check(rtnl_qdisc_add(s.sock, q.p, NLM_F_CREATE | NLM_F_REPLACE), name + ": htb qdisc", "sch_htb"));
  ClassRef c(rtnl_class_alloc());
  InitTc(TC_CAST(c.p), link.p, kRoot, kClass, "htb");
  rtnl_htb_set_rate64(c.p, bytes_per_sec);
  rtnl_htb_set_ceil64(c.p, bytes_per_sec);
  rtnl_htb_set_rbuffer(c.p, burst);
  rtnl_htb_set_cbuffer(c.p, burst);
  return Check(rtnl_class_add(s.sock, c.p, NLM_F_CREATE | NLM_F_REPLACE), name + ": htb class", "sch_htb");
}

Status RedirectIngress(const std::string& name, const std::string& to) {
  Sock s;
  HEARTH_ASSIGN_OR_RETURN(rtnl_link * l, Open(s, name));
  LinkRef link(l);
  rtnl_link* t = nullptr;
  if (rtnl_link_get_kernel(s.sock, 0, to.c_str(), &t) < 0) return Fail(NotFound("no interface '" + to + "'"));
  LinkRef target(t);
  {
    QdiscRef old(rtnl_qdisc_alloc());
    InitTc(TC_CAST(old.p), link.p, TC_H_INGRESS, kIngress, nullptr);
    (void)rtnl_qdisc_delete(s.sock, old.p);  // a previous redirect, if any
  }
  QdiscRef q(rtnl_qdisc_alloc());
  InitTc(TC_CAST(q.p), link.p, TC_H_INGRESS, kIngress, "ingress");
  HEARTH_TRY(Check(rtnl_qdisc_add(s.sock, q.p, NLM_F_CREATE), name + ": ingress qdisc", "sch_ingress"));

  ClsRef f(rtnl_cls_alloc());
  InitTc(TC_CAST(f.p), link.p, kIngress, 0, "u32");
  rtnl_cls_set_prio(f.p, kFilterPrio);
  rtnl_cls_set_protocol(f.p, ETH_P_ALL);
  rtnl_u32_add_key_uint32(f.p, 0, 0, 0, 0);  // matches every packet
  rtnl_u32_set_cls_terminal(f.p);
  ActRef a(rtnl_act_alloc());
  rtnl_tc_set_kind(TC_CAST(a.p), "mirred");
  rtnl_mirred_set_action(a.p, TCA_EGRESS_REDIR);
  rtnl_mirred_set_policy(a.p, TC_ACT_STOLEN);
  rtnl_mirred_set_ifindex(a.p, static_cast<uint32_t>(rtnl_link_get_ifindex(target.p)));
  rtnl_u32_add_action(f.p, a.p);  // takes its own reference
  return Check(rtnl_cls_add(s.sock, f.p, NLM_F_CREATE), name + ": redirect to " + to, "cls_u32 and act_mirred");
}

Status ClearTc(const std::string& name) {
  Sock s;
  auto l = Open(s, name);
  if (!l) return l.error().code == ErrorCode::kNotFound ? Ok() : Status(Fail(std::move(l.error())));
  LinkRef link(*l);
  for (uint32_t parent : {TC_H_ROOT, TC_H_INGRESS}) {
    QdiscRef q(rtnl_qdisc_alloc());
    InitTc(TC_CAST(q.p), link.p, parent, parent == TC_H_INGRESS ? kIngress : 0, nullptr);
    int err = rtnl_qdisc_delete(s.sock, q.p);
    // Nothing to delete: ENOENT (-NLE_OBJ_NOTFOUND) or EINVAL for the default root qdisc.
    if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_INVAL && err != -NLE_NODEV)
      return Fail(Internal(name + ": remove qdisc: " + nl_geterror(err)));
  }
  return Ok();
}

Status EnsureIfb(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Fail(InvalidArgument("bad interface name '" + name + "'"));
  Sock s;
  if (!s.sock) return Fail(Internal("netlink: out of memory"));
  if (int err = nl_connect(s.sock, NETLINK_ROUTE); err < 0)
    return Fail(Unavailable(std::string("netlink connect: ") + nl_geterror(err)));
  rtnl_link* existing = nullptr;
  if (rtnl_link_get_kernel(s.sock, 0, name.c_str(), &existing) < 0) {
    LinkRef l(rtnl_link_alloc());
    rtnl_link_set_name(l.p, name.c_str());
    if (int err = rtnl_link_set_type(l.p, "ifb"); err < 0) return Fail(Internal("ifb: " + std::string(nl_geterror(err))));
    HEARTH_TRY(Check(rtnl_link_add(s.sock, l.p, NLM_F_CREATE | NLM_F_EXCL), "create " + name, "ifb"));
    if (rtnl_link_get_kernel(s.sock, 0, name.c_str(), &existing) < 0)
      return Fail(Internal(name + " vanished after creation"));
  }
  LinkRef link(existing);
  LinkRef change(rtnl_link_alloc());
  rtnl_link_set_flags(change.p, IFF_UP);
  return Check(rtnl_link_change(s.sock, link.p, change.p, 0), name + ": up", "ifb");
}

}  // namespace hearth
