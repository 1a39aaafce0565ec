// FakeHostLinks: an in-memory kernel for the host network's unit tests. It keeps links,
// addresses and default routes, refuses what the kernel refuses (missing links, a bridge as
// a port, duplicate addresses, routes via unreachable gateways) and can be told to fail
// the next operation whose text contains `fail_on` (once), to test rollback.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "net/host_links.h"
#include "net/net_plan.h"

namespace hearth {

class FakeHostLinks final : public HostLinks {
 public:
  KernelState state;
  std::string fail_on;           // an operation whose text contains this fails
  std::vector<std::string> calls;  // every change, in order
  bool vlan_filtering_supported = true;

  void AddNic(const std::string& name, std::vector<std::string> addrs = {}) {
    KernelLink l;
    l.name = name;
    l.ifindex = next_index_++;
    l.mtu = 1500;
    l.up = true;
    l.addrs = std::move(addrs);
    state.links.push_back(l);
  }
  KernelLink* Link(const std::string& name) {
    for (auto& l : state.links)
      if (l.name == name) return &l;
    return nullptr;
  }

  Result<KernelState> Read() override { return state; }
  Status CreateLink(const LinkSpec& spec) override {
    HEARTH_TRY(Call("create " + spec.kind + " " + spec.name));
    if (Link(spec.name)) return Fail(Internal("create " + spec.name + ": File exists"));
    if (spec.kind == "vlan" && !Link(spec.vlan_parent)) return Fail(NotFound("no interface '" + spec.vlan_parent + "'"));
    KernelLink l;
    l.name = spec.name;
    l.ifindex = next_index_++;
    l.kind = spec.kind;
    l.mtu = 1500;
    l.vlan_parent = spec.vlan_parent;
    l.vlan_id = spec.vlan_id;
    l.bond_mode = spec.bond_mode;
    state.links.push_back(l);
    return Ok();
  }
  Status DeleteLink(const std::string& name) override {
    HEARTH_TRY(Call("delete " + name));
    HEARTH_TRY(Need(name));
    for (auto& l : state.links)
      if (l.master == name) l.master = "";
    state.links.erase(std::remove_if(state.links.begin(), state.links.end(), [&](auto& l) { return l.name == name; }),
                      state.links.end());
    auto& r = state.default_routes;
    r.erase(std::remove_if(r.begin(), r.end(), [&](auto& x) { return x.dev == name; }), r.end());
    return Ok();
  }
  Status SetMaster(const std::string& name, const std::string& master) override {
    HEARTH_TRY(Call(name + " master " + master));
    HEARTH_TRY(Need(name));
    if (!master.empty()) {
      HEARTH_TRY(Need(master));
      if (Link(name)->kind == "bridge") return Fail(Internal("add " + name + " to " + master + ": Too many levels of symbolic links"));
    }
    Link(name)->master = master;
    return Ok();
  }
  Status SetMtu(const std::string& name, unsigned mtu) override {
    HEARTH_TRY(Call(name + " mtu " + std::to_string(mtu)));
    HEARTH_TRY(Need(name));
    Link(name)->mtu = mtu;
    return Ok();
  }
  Status SetUp(const std::string& name, bool up) override {
    HEARTH_TRY(Call(name + (up ? " up" : " down")));
    HEARTH_TRY(Need(name));
    Link(name)->up = up;
    return Ok();
  }
  Status SetBridgeStp(const std::string& name, bool stp) override {
    HEARTH_TRY(Call(name + " stp " + (stp ? "on" : "off")));
    HEARTH_TRY(Need(name));
    Link(name)->stp = stp;
    return Ok();
  }
  Status SetBridgeVlanFiltering(const std::string& name, bool on) override {
    HEARTH_TRY(Call(name + " vlan_filtering " + (on ? "on" : "off")));
    HEARTH_TRY(Need(name));
    if (on && !vlan_filtering_supported)
      return Fail(FailedPrecondition("bridge_vlan_aware: " + name + ": the running kernel has no bridge VLAN filtering"));
    Link(name)->vlan_filtering = on;
    return Ok();
  }
  Status SetBridgeVlans(const std::string& name, const std::vector<int>&, bool self) override {
    HEARTH_TRY(Call(name + " vlans" + (self ? " self" : "")));
    return Need(name);
  }
  Status AddAddress(const std::string& name, const std::string& cidr) override {
    HEARTH_TRY(Call(name + " add " + cidr));
    HEARTH_TRY(Need(name));
    auto& a = Link(name)->addrs;
    if (std::find(a.begin(), a.end(), cidr) != a.end()) return Fail(Internal("File exists"));
    a.push_back(cidr);
    return Ok();
  }
  Status DeleteAddress(const std::string& name, const std::string& cidr) override {
    HEARTH_TRY(Call(name + " del " + cidr));
    HEARTH_TRY(Need(name));
    auto& a = Link(name)->addrs;
    auto it = std::find(a.begin(), a.end(), cidr);
    if (it == a.end()) return Fail(Internal("Cannot assign requested address"));
    auto gone = Ipv4Secondaries(a, cidr);  // as the kernel does without promote_secondaries
    a.erase(it);
    for (const auto& g : gone) a.erase(std::find(a.begin(), a.end(), g));
    return Ok();
  }
  Status AddDefaultRoute(const KernelRoute& route) override {
    HEARTH_TRY(Call("route add " + route.gateway + " " + route.dev));
    HEARTH_TRY(Need(route.dev));
    state.default_routes.push_back(route);
    return Ok();
  }
  Status DeleteDefaultRoute(const KernelRoute& route) override {
    HEARTH_TRY(Call("route del " + route.gateway + " " + route.dev));
    auto& r = state.default_routes;
    auto it = std::find_if(r.begin(), r.end(), [&](auto& x) { return x.gateway == route.gateway && x.dev == route.dev; });
    if (it == r.end()) return Fail(Internal("No such process"));
    r.erase(it);
    return Ok();
  }

 private:
  Status Call(const std::string& what) {
    calls.push_back(what);
    if (!fail_on.empty() && what.find(fail_on) != std::string::npos) {
      fail_on.clear();  // once: the undo steps that follow must work
      return Fail(Internal(what + ": injected failure"));
    }
    return Ok();
  }
  Status Need(const std::string& name) {
    if (!Link(name)) return Fail(NotFound("no interface '" + name + "'"));
    return Ok();
  }
  int next_index_ = 10;
};

}  // namespace hearth
