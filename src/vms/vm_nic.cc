// VM NICs on the host: the tap of a netN (bridge, VLANs, rate, as PVE::Network::tap_plug),
// and a running VM's NIC changed in place, as qemu-server's vmconfig_update_net does it.
#include "core/strings.h"
#include "vms/vm_service.h"

namespace hearth {

TapSpec NicTapSpec(int vmid, int index, const NetDev& nic) {
  TapSpec tap;
  tap.name = TapName(vmid, index);
  tap.bridge = nic.Bridge();
  auto opt = [&](const char* k) {
    auto it = nic.opts.find(k);
    return it == nic.opts.end() ? std::string() : it->second;
  };
  // mtu=1 is Proxmox's "the bridge's MTU" (virtio only), as is no mtu at all.
  if (auto mtu = ParseInt(opt("mtu")); mtu && *mtu > 1) tap.mtu = static_cast<int>(*mtu);
  if (auto q = ParseInt(opt("queues")); q && *q > 1) tap.multi_queue = true;
  if (auto tag = ParseInt(opt("tag")); tag && *tag >= 1 && *tag <= 4094) tap.tag = static_cast<int>(*tag);
  tap.trunks = ExpandTrunks(opt("trunks"));
  if (auto rate = ParseDouble(opt("rate")); rate && *rate > 0) tap.rate = *rate;
  return tap;
}

Status VmService::UpdateNicLive(TaskContext* ctx, int vmid, const std::string& key, const NetDev& before,
                                const NetDev& after) {
  auto index = ParseInt(key.substr(3));
  if (!index) return Fail(Internal("not a NIC: " + key));
  TapSpec tap = NicTapSpec(vmid, static_cast<int>(*index), after);
  auto log = [&](const std::string& line) {
    if (ctx) ctx->Log(key + ": " + line);
  };
  auto opt = [](const NetDev& n, const char* k) {
    auto it = n.opts.find(k);
    return it == n.opts.end() ? std::string() : it->second;
  };
  bool moved = before.Bridge() != after.Bridge() || ParseInt(opt(before, "tag")) != ParseInt(opt(after, "tag"));
  bool replug = moved || opt(before, "trunks") != opt(after, "trunks") ||
                (opt(before, "firewall") == "1") != (opt(after, "firewall") == "1");
  if (replug) {
    // The new place is checked by plugging into it; if that fails, the NIC goes back where
    // it was (bridge, VLANs, rate, link), so a change left pending never cuts the guest off.
    TapSpec old = NicTapSpec(vmid, static_cast<int>(*index), before);
    auto restore = [&] {
      (void)net_.PlugTap(old);
      (void)qemu_.SetLink(vmid, key, !before.LinkDown());
    };
    if (auto st = net_.UnplugTap(tap.name); !st) {
      restore();
      return st;
    }
    // The guest sees its link drop and come back on a new bridge or VLAN (a DHCP client
    // asks again), as Proxmox does it.
    if (moved) (void)qemu_.SetLink(vmid, key, false);
    if (auto st = net_.PlugTap(tap); !st) {
      (void)net_.UnplugTap(tap.name);
      restore();
      return st;
    }
    log(tap.name + " moved to bridge " + tap.bridge + (tap.tag ? " (VLAN " + std::to_string(tap.tag) + ")" : ""));
  } else if (ParseDouble(opt(before, "rate")).value_or(0) != ParseDouble(opt(after, "rate")).value_or(0)) {
    HEARTH_TRY(net_.SetTapRate(tap.name, tap.rate));
    log(tap.rate > 0 ? "rate limit " + opt(after, "rate") + " MB/s" : "rate limit removed");
  }
  if (moved || before.LinkDown() != after.LinkDown()) {
    HEARTH_TRY(qemu_.SetLink(vmid, key, !after.LinkDown()));
    if (before.LinkDown() != after.LinkDown()) log(after.LinkDown() ? "link down" : "link up");
  }
  return Ok();
}

}  // namespace hearth
