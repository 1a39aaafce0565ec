// FirewallService: the datacenter, node and VM firewall configuration as Proxmox's
// /cluster/firewall, /nodes/{node}/firewall and /nodes/{node}/qemu/{vmid}/firewall APIs see
// it (pve-firewall; docs/reference/pve-firewall.md), kept in the Store and applied to the
// kernel as one nftables transaction (compile.h) after every change.
//
// - A change is compiled with the rest and applied first; only if nftables takes the whole
//   rule set is it stored. A rule set the kernel refuses leaves both the kernel and the stored
//   configuration as they were (the error is nftables' own message).
// - VMs' NICs with firewall=1 come from a callback; a watcher recompiles when the VMs change
//   (VmService::Generation), and at start the stored configuration is applied again.
// - Rules: Proxmox's semantics for the list: POST inserts at position 0 and leaves a rule
//   disabled unless `enable` is given; PUT with `moveto` moves; digests guard concurrent edits.
//
// Storage: Store meta keys firewall/cluster, firewall/host/<node>, firewall/vm/<vmid>, each a
// JSON object {options: {...}, rules: [{...}]}.
// Thread-safety: all methods may be called from any thread; changes are serialised.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "firewall/compile.h"
#include "firewall/nft_backend.h"
#include "model/firewall.h"
#include "state/store.h"

namespace hearth {

// Which configuration: the datacenter's, this node's, or a VM's.
struct FwScope {
  FwEnv env = FwEnv::kCluster;
  int vmid = 0;
};

struct FirewallDeps {
  Store& store;
  NftBackend& nft;
  std::string node;
  // Every VM's firewalled NICs (vmid, netN index, MAC), and a number that changes whenever
  // any VM's configuration does.
  std::function<std::vector<FwNic>()> firewalled_nics;
  std::function<uint64_t()> vms_generation;
  // The node's own networks (CIDRs) and the management ports (pve-firewall's local_network).
  std::function<std::vector<std::string>()> local_networks;
  std::vector<int> management_ports;
  // Called with true before guest rules are applied: bridged IP traffic must pass the inet
  // hooks (bridge-nf-call-iptables). Returns an error to report.
  std::function<Status()> enable_bridge_netfilter;
};

class FirewallService {
 public:
  explicit FirewallService(FirewallDeps deps);
  ~FirewallService();

  // Applies the stored configuration and starts the watcher.
  Status Start();

  Result<FwFields> Options(const FwScope& scope);
  Status SetOptions(const FwScope& scope, const FwFields& set, const std::vector<std::string>& del,
                    const std::string& digest);

  Result<std::vector<FwRule>> Rules(const FwScope& scope);
  // Proxmox's list digest of the rules (each entry's fields).
  static std::string RulesDigest(const std::vector<FwRule>& rules);
  static std::string OptionsDigest(const FwFields& options);
  Status AddRule(const FwScope& scope, FwFields fields);
  Status UpdateRule(const FwScope& scope, int pos, const FwFields& set, const std::vector<std::string>& del,
                    std::optional<int> moveto, const std::string& digest);
  Status DeleteRule(const FwScope& scope, int pos, const std::string& digest);

  // The API's port, once bound: kept open from the local networks with 8006 and 22.
  void SetApiPort(int port);

  // A destroyed VM's firewall configuration goes (Proxmox's remove_vmfw_conf).
  Status ForgetVm(int vmid);

  // Compiles and applies the current configuration (also what the watcher does).
  Status Reapply();
  // The script applied last (for tests and `hearth firewall show`).
  std::string Applied();

 private:
  struct Config {
    FwFields options;
    std::vector<FwRule> rules;
  };
  std::string Key(const FwScope& scope) const;
  Result<Config> Load(const FwScope& scope);
  Status Save(const FwScope& scope, const Config& c);
  // Loads, lets `fn` change the scope's configuration, compiles everything with it, applies,
  // and stores it only if the kernel took it. Caller holds mu_.
  Status Change(const FwScope& scope, const std::function<Status(Config&)>& fn);
  Status CheckCompiles(const FwScope& scope, const Config& c);
  Result<FwInputs> Inputs(const std::optional<std::pair<FwScope, Config>>& candidate);
  Status ApplyScript(const std::string& script, bool guests);
  void Watch();

  FirewallDeps deps_;
  std::mutex mu_;
  std::string applied_;  // GUARDED_BY(mu_)
  std::thread watcher_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // GUARDED_BY(stop_mu_)
};

}  // namespace hearth
