#include "net/net_plan.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>

#include "core/pattern.h"
#include "core/strings.h"

namespace hearth {

std::string CanonicalCidr(const std::string& cidr) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos || cidr.size() > 64) return "";
  std::string addr = cidr.substr(0, slash), bits = cidr.substr(slash);
  unsigned char buf[16];
  char text[INET6_ADDRSTRLEN];
  int family = addr.find(':') == std::string::npos ? AF_INET : AF_INET6;
  if (inet_pton(family, addr.c_str(), buf) != 1 || !inet_ntop(family, buf, text, sizeof text)) return "";
  return std::string(text) + bits;
}

std::vector<std::string> Ipv4Secondaries(const std::vector<std::string>& addrs, const std::string& cidr) {
  auto parse = [](const std::string& c) -> std::optional<std::pair<uint32_t, int>> {
    size_t slash = c.find('/');
    in_addr a{};
    if (slash == std::string::npos || inet_pton(AF_INET, c.substr(0, slash).c_str(), &a) != 1) return std::nullopt;
    int bits = std::atoi(c.c_str() + slash + 1);
    if (bits <= 0 || bits > 32) return std::nullopt;
    uint32_t mask = bits == 32 ? ~0u : ~(~0u >> bits);
    return std::make_pair(ntohl(a.s_addr) & mask, bits);
  };
  std::vector<std::string> out;
  auto me = parse(cidr);
  if (!me) return out;
  bool primary = true, after = false;
  for (const auto& other : addrs) {
    if (other == cidr) {
      after = true;
      continue;
    }
    if (parse(other) != me) continue;
    if (!after) primary = false;  // an earlier address of the subnet is its primary
    else out.push_back(other);
  }
  return primary ? out : std::vector<std::string>{};
}

bool IsGuestPlumbing(const std::string& name) {
  static const Pattern re("(tap|veth|ifb)\\d+i\\d+|fw(br|pr|ln)\\d+[ip]?\\d*");
  return re.FullMatch(name);
}

std::string NetOp::Describe() const {
  switch (kind) {
    case kCreate:
      if (spec.kind == "vlan")
        return "create vlan " + name + " (" + spec.vlan_parent + ", id " + std::to_string(spec.vlan_id) + ")";
      if (spec.kind == "bond") return "create bond " + name + " (" + spec.bond_mode + ")";
      return "create " + spec.kind + " " + name;
    case kDelete: return "delete " + name;
    case kMaster: return arg.empty() ? name + ": release from its master" : name + ": port of " + arg;
    case kMtu: return name + ": mtu " + std::to_string(num);
    case kUp: return name + (flag ? ": up" : ": down");
    case kStp: return name + ": stp " + (flag ? "on" : "off");
    case kVlanFiltering: return name + ": vlan filtering " + (flag ? "on" : "off");
    case kVlans: {
      std::vector<std::string> ids;
      for (int v : vids) ids.push_back(std::to_string(v));
      return name + ": vlans " + (ids.empty() ? "none" : Join(ids, ",")) + (flag ? " (self)" : "");
    }
    case kAddAddress: return name + ": add address " + arg;
    case kDeleteAddress: return name + ": delete address " + arg;
    case kAddRoute: return std::string("add default route") + (flag ? " (IPv6)" : "") + " via " + arg + " dev " + name;
    case kDeleteRoute:
      return std::string("delete default route") + (flag ? " (IPv6)" : "") + " via " + arg + " dev " + name;
  }
  return "?";
}

namespace {

NetOp Op(NetOp::Kind kind, std::string name) {
  NetOp o;
  o.kind = kind;
  o.name = std::move(name);
  return o;
}
NetOp Master(const std::string& name, const std::string& master) {
  NetOp o = Op(NetOp::kMaster, name);
  o.arg = master;
  return o;
}
NetOp Flag(NetOp::Kind kind, const std::string& name, bool flag) {
  NetOp o = Op(kind, name);
  o.flag = flag;
  return o;
}
NetOp Mtu(const std::string& name, unsigned mtu) {
  NetOp o = Op(NetOp::kMtu, name);
  o.num = mtu;
  return o;
}
NetOp Addr(NetOp::Kind kind, const std::string& name, const std::string& cidr) {
  NetOp o = Op(kind, name);
  o.arg = cidr;
  return o;
}
NetOp Route(NetOp::Kind kind, const KernelRoute& r) {
  NetOp o = Op(kind, r.dev);
  o.arg = r.gateway;
  o.flag = r.v6;
  return o;
}

// The planner's view of the kernel, updated as steps are planned so that later steps compare
// against the state the earlier ones leave.
struct Planner {
  KernelState cur;
  std::vector<NetStep> steps;

  KernelLink* Link(const std::string& name) {
    for (auto& l : cur.links)
      if (l.name == name) return &l;
    return nullptr;
  }
  void Add(NetOp op, std::vector<NetOp> undo) { steps.push_back({std::move(op), std::move(undo)}); }

  void Create(const NetIface& i) {
    LinkSpec spec{i.name, i.type(), "", 0, "", ""};
    if (spec.kind == "bridge")
      for (const auto& port : i.Ports())
        if (const KernelLink* pl = Link(port); pl && !pl->mac.empty()) {
          spec.mac = pl->mac;
          break;
        }
    if (spec.kind == "vlan") {
      spec.vlan_parent = i.VlanRawDevice();
      spec.vlan_id = i.VlanId();
    }
    if (spec.kind == "bond") spec.bond_mode = i.Has("bond_mode") ? i.Get("bond_mode") : "balance-rr";
    NetOp op = Op(NetOp::kCreate, i.name);
    op.spec = spec;
    Add(op, {Op(NetOp::kDelete, i.name)});
    KernelLink l;
    l.name = i.name;
    l.kind = spec.kind;
    l.mtu = 1500;
    l.vlan_parent = spec.vlan_parent;
    l.vlan_id = spec.vlan_id;
    l.bond_mode = spec.bond_mode;
    l.mac = spec.mac;
    cur.links.push_back(l);
  }

  // Deletes a link, with undo steps that make it again as it is now.
  void Delete(const KernelLink& l) {
    std::vector<NetOp> undo;
    NetOp create = Op(NetOp::kCreate, l.name);
    create.spec = {l.name, l.kind, l.vlan_parent, l.vlan_id, l.bond_mode, l.kind == "bridge" ? l.mac : ""};
    undo.push_back(create);
    undo.push_back(Mtu(l.name, l.mtu));
    if (l.kind == "bridge") {
      if (l.stp) undo.push_back(Flag(NetOp::kStp, l.name, true));
      if (l.vlan_filtering) undo.push_back(Flag(NetOp::kVlanFiltering, l.name, true));
    }
    if (!l.master.empty()) undo.push_back(Master(l.name, l.master));
    for (const auto& a : l.addrs) undo.push_back(Addr(NetOp::kAddAddress, l.name, a));
    if (l.up) undo.push_back(Flag(NetOp::kUp, l.name, true));
    Add(Op(NetOp::kDelete, l.name), undo);
    std::string name = l.name;
    cur.links.erase(std::remove_if(cur.links.begin(), cur.links.end(), [&](auto& x) { return x.name == name; }),
                    cur.links.end());
  }

  void SetMaster(KernelLink& port, const std::string& master) {
    if (port.master == master) return;
    Add(Master(port.name, master), {Master(port.name, port.master)});
    port.master = master;
  }
  void SetUp(KernelLink& l, bool up) {
    if (l.up == up) return;
    Add(Flag(NetOp::kUp, l.name, up), {Flag(NetOp::kUp, l.name, l.up)});
    l.up = up;
  }
};

// Creation order: bonds (ports of bridges), bridges, then vlans (which may sit on either).
int CreateRank(const std::string& type) { return type == "bond" ? 0 : type == "bridge" ? 1 : 2; }

std::vector<std::string> WantedAddrs(const NetIface& i) {
  std::vector<std::string> out;
  for (const auto& c : {i.Cidr(), i.Cidr6()})
    if (auto canon = CanonicalCidr(c); !canon.empty()) out.push_back(canon);
  return out;
}

}  // namespace

std::vector<NetStep> PlanApply(const KernelState& now, const HostNetConfig& applied, const HostNetConfig& wanted) {
  Planner p{now, {}};
  std::vector<const NetIface*> order;
  for (const auto& [n, i] : wanted.ifaces) order.push_back(&i);
  std::stable_sort(order.begin(), order.end(),
                   [](auto* a, auto* b) { return CreateRank(a->type()) < CreateRank(b->type()); });

  // 1. Links of a kind other than the one wanted (made by hearth) go; missing links come.
  for (const NetIface* i : order) {
    if (!CreatableIfaceType(i->type()) || i->adopted) continue;
    KernelLink* l = p.Link(i->name);
    const NetIface* before = applied.Find(i->name);
    if (l && l->kind != i->type() && before && !before->adopted) {
      p.Delete(*l);
      l = nullptr;
    }
    if (!l) p.Create(*i);
  }
  // 2. Bridge options.
  for (const NetIface* i : order) {
    KernelLink* l = p.Link(i->name);
    if (!l || i->type() != "bridge") continue;
    bool stp = i->Get("bridge_stp") == "on";
    if (l->stp != stp) p.Add(Flag(NetOp::kStp, l->name, stp), {Flag(NetOp::kStp, l->name, l->stp)});
    l->stp = stp;
    bool filtering = i->vlan_aware();
    if (l->vlan_filtering != filtering)
      p.Add(Flag(NetOp::kVlanFiltering, l->name, filtering), {Flag(NetOp::kVlanFiltering, l->name, l->vlan_filtering)});
    l->vlan_filtering = filtering;
  }
  // 3. Ports: released if the previous configuration put them there, then joined.
  for (const auto& [name, before] : applied.ifaces) {
    const NetIface* after = wanted.Find(name);
    std::vector<std::string> keep = after ? after->Ports() : std::vector<std::string>{};
    for (const auto& port : before.Ports()) {
      KernelLink* pl = p.Link(port);
      if (pl && pl->master == name && std::find(keep.begin(), keep.end(), port) == keep.end()) p.SetMaster(*pl, "");
    }
  }
  for (const NetIface* i : order) {
    if (i->type() != "bridge" && i->type() != "bond") continue;
    for (const auto& port : i->Ports()) {
      KernelLink* pl = p.Link(port);
      if (!pl) {
        // Not there: the kernel refuses this step, and the apply rolls back.
        p.Add(Master(port, i->name), {});
        continue;
      }
      if (i->type() == "bond" && pl->up) p.SetUp(*pl, false);  // a bond takes only ports that are down
      p.SetMaster(*pl, i->name);
    }
  }
  // 4. MTUs, after the ports (a bridge's MTU follows its ports unless set).
  for (const NetIface* i : order) {
    KernelLink* l = p.Link(i->name);
    unsigned mtu = static_cast<unsigned>(i->Mtu());
    // An MTU hearth set that the configuration no longer has goes back to the default
    // (ifupdown2 does the same); one it never set is left as the kernel has it.
    if (const NetIface* before = applied.Find(i->name); mtu == 0 && before && before->Mtu() > 0) mtu = 1500;
    if (!l || mtu == 0 || l->mtu == mtu) continue;
    p.Add(Mtu(l->name, mtu), {Mtu(l->name, l->mtu)});
    l->mtu = mtu;
  }
  // 5. The VLANs of a VLAN-aware bridge's ports and of the bridge itself.
  for (const NetIface* i : order) {
    if (i->type() != "bridge" || !i->vlan_aware()) continue;
    auto vids = ExpandVlanList(i->Has("bridge_vids") ? i->Get("bridge_vids") : "2-4094");
    for (const auto& port : i->Ports()) {
      NetOp o = Op(NetOp::kVlans, port);
      o.vids = vids;
      p.Add(o, {});
    }
    NetOp self = Op(NetOp::kVlans, i->name);
    self.vids = vids;
    self.flag = true;
    p.Add(self, {});
  }
  // 6. Addresses: the unwanted ones go first, then the wanted ones come. Deleting the primary
  //    IPv4 address of a subnet also deletes that subnet's secondary addresses (unless the
  //    sysctl promote_secondaries is set), so an address added before would vanish with it.
  for (const NetIface* i : order) {
    KernelLink* l = p.Link(i->name);
    if (!l) continue;
    auto want = WantedAddrs(*i);
    for (const auto& a : std::vector<std::string>(l->addrs)) {
      auto at = std::find(l->addrs.begin(), l->addrs.end(), a);
      if (at == l->addrs.end() || std::find(want.begin(), want.end(), a) != want.end()) continue;
      std::vector<std::string> gone = Ipv4Secondaries(l->addrs, a);
      gone.insert(gone.begin(), a);
      std::vector<NetOp> undo;
      for (const auto& g : gone) undo.push_back(Addr(NetOp::kAddAddress, l->name, g));
      p.Add(Addr(NetOp::kDeleteAddress, l->name, a), undo);
      for (const auto& g : gone) l->addrs.erase(std::find(l->addrs.begin(), l->addrs.end(), g));
    }
    for (const auto& a : want)
      if (std::find(l->addrs.begin(), l->addrs.end(), a) == l->addrs.end()) {
        p.Add(Addr(NetOp::kAddAddress, l->name, a), {Addr(NetOp::kDeleteAddress, l->name, a)});
        l->addrs.push_back(a);
      }
  }
  // 7. Up: ports of the configured bridges and bonds, then the interfaces with autostart.
  for (const NetIface* i : order) {
    if (i->type() != "bridge") continue;
    for (const auto& port : i->Ports())
      if (KernelLink* pl = p.Link(port)) p.SetUp(*pl, true);
  }
  for (const NetIface* i : order)
    if (KernelLink* l = p.Link(i->name); l && i->autostart()) p.SetUp(*l, true);
  // 8. Default routes, per family: the configured gateway, or none if hearth set the last one.
  for (bool v6 : {false, true}) {
    std::optional<KernelRoute> want, had;
    for (const auto& [n, i] : wanted.ifaces)
      if (auto gw = i.Get(v6 ? "gateway6" : "gateway"); !gw.empty()) want = KernelRoute{v6, gw, n};
    // A gateway hearth set goes when it leaves a configured interface; an interface that left
    // the configuration takes its route along if hearth deletes it, and keeps it if released.
    for (const auto& [n, i] : applied.ifaces)
      if (auto gw = i.Get(v6 ? "gateway6" : "gateway"); !gw.empty() && wanted.Find(n)) had = KernelRoute{v6, gw, n};
    if (!want && !had) continue;
    auto same = [](const KernelRoute& a, const KernelRoute& b) { return a.gateway == b.gateway && a.dev == b.dev; };
    bool present = false;
    for (const auto& r : std::vector<KernelRoute>(p.cur.default_routes)) {
      if (r.v6 != v6) continue;
      if (want && same(r, *want)) {
        present = true;
        continue;
      }
      p.Add(Route(NetOp::kDeleteRoute, r), {Route(NetOp::kAddRoute, r)});
    }
    if (want && !present) p.Add(Route(NetOp::kAddRoute, *want), {Route(NetOp::kDeleteRoute, *want)});
  }
  // 9. Interfaces that left the configuration: deleted if hearth made them (vlans first).
  std::vector<const NetIface*> gone;
  for (const auto& [n, i] : applied.ifaces)
    if (!wanted.Find(n) && !i.adopted && CreatableIfaceType(i.type())) gone.push_back(&i);
  std::stable_sort(gone.begin(), gone.end(), [](auto* a, auto* b) { return CreateRank(a->type()) > CreateRank(b->type()); });
  for (const NetIface* i : gone)
    if (KernelLink* l = p.Link(i->name)) p.Delete(KernelLink(*l));
  return std::move(p.steps);
}

namespace {

Status Execute(HostLinks& links, const NetOp& op) {
  switch (op.kind) {
    case NetOp::kCreate: return links.CreateLink(op.spec);
    case NetOp::kDelete: return links.DeleteLink(op.name);
    case NetOp::kMaster: return links.SetMaster(op.name, op.arg);
    case NetOp::kMtu: return links.SetMtu(op.name, op.num);
    case NetOp::kUp: return links.SetUp(op.name, op.flag);
    case NetOp::kStp: return links.SetBridgeStp(op.name, op.flag);
    case NetOp::kVlanFiltering: return links.SetBridgeVlanFiltering(op.name, op.flag);
    case NetOp::kVlans: return links.SetBridgeVlans(op.name, op.vids, op.flag);
    case NetOp::kAddAddress: return links.AddAddress(op.name, op.arg);
    case NetOp::kDeleteAddress: return links.DeleteAddress(op.name, op.arg);
    case NetOp::kAddRoute: return links.AddDefaultRoute({op.flag, op.arg, op.name});
    case NetOp::kDeleteRoute: return links.DeleteDefaultRoute({op.flag, op.arg, op.name});
  }
  return Fail(Internal("unknown network step"));
}

}  // namespace

Status ApplySteps(HostLinks& links, const std::vector<NetStep>& steps,
                  const std::function<void(const std::string&)>& log) {
  for (size_t n = 0; n < steps.size(); ++n) {
    log(steps[n].op.Describe());
    auto done = Execute(links, steps[n].op);
    if (done) continue;
    Error error = std::move(done.error());
    log("failed: " + error.message + "; rolling back " + std::to_string(n) + " step(s)");
    for (size_t k = n; k-- > 0;)
      for (const auto& undo : steps[k].undo) {
        auto u = Execute(links, undo);
        log("  undo: " + undo.Describe() + (u ? "" : " failed: " + u.error().message));
      }
    return Fail(std::move(error).WithContext(steps[n].op.Describe()));
  }
  return Ok();
}

}  // namespace hearth
