#include "firewall/firewall.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace hearth {
namespace {

constexpr const char* kModified = "detected modified configuration - file changed by other user? Try again.";

FwFields FieldsOf(const nlohmann::json& j) {
  FwFields f;
  if (!j.is_object()) return f;
  for (const auto& [k, v] : j.items())
    if (v.is_string()) f[k] = v.get<std::string>();
  return f;
}

}  // namespace

FirewallService::FirewallService(FirewallDeps deps) : deps_(std::move(deps)) {}

FirewallService::~FirewallService() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

std::string FirewallService::Key(const FwScope& scope) const {
  switch (scope.env) {
    case FwEnv::kHost: return "firewall/host/" + deps_.node;
    case FwEnv::kVm: return "firewall/vm/" + std::to_string(scope.vmid);
    default: return "firewall/cluster";
  }
}

Result<FirewallService::Config> FirewallService::Load(const FwScope& scope) {
  HEARTH_ASSIGN_OR_RETURN(auto text, deps_.store.GetMeta(Key(scope)));
  Config c;
  if (!text || text->empty()) return c;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail(Internal("firewall: the stored configuration " + Key(scope) + " is damaged"));
  if (j.contains("options")) c.options = FieldsOf(j["options"]);
  if (j.contains("rules") && j["rules"].is_array())
    for (const auto& r : j["rules"]) c.rules.push_back(FwRule{FieldsOf(r)});
  return c;
}

Status FirewallService::Save(const FwScope& scope, const Config& c) {
  nlohmann::json j = {{"options", c.options}, {"rules", nlohmann::json::array()}};
  for (const auto& r : c.rules) j["rules"].push_back(r.f);
  return deps_.store.PutMeta(Key(scope), j.dump());
}

std::string FirewallService::RulesDigest(const std::vector<FwRule>& rules) {
  std::vector<FwFields> items;
  for (const auto& r : rules) items.push_back(r.f);
  return FwDigest(items);
}

std::string FirewallService::OptionsDigest(const FwFields& options) { return FwDigest({options}); }

Result<FwInputs> FirewallService::Inputs(const std::optional<std::pair<FwScope, Config>>& candidate) {
  auto get = [&](const FwScope& scope) -> Result<Config> {
    if (candidate && candidate->first.env == scope.env && candidate->first.vmid == scope.vmid) return candidate->second;
    return Load(scope);
  };
  FwInputs in;
  HEARTH_ASSIGN_OR_RETURN(Config cluster, get({FwEnv::kCluster, 0}));
  HEARTH_ASSIGN_OR_RETURN(Config host, get({FwEnv::kHost, 0}));
  in.cluster_options = cluster.options;
  in.cluster_rules = cluster.rules;
  in.host_options = host.options;
  in.host_rules = host.rules;
  std::map<int, std::vector<FwNic>> by_vm;
  if (deps_.firewalled_nics)
    for (const auto& nic : deps_.firewalled_nics()) by_vm[nic.vmid].push_back(nic);
  if (candidate && candidate->first.env == FwEnv::kVm) by_vm[candidate->first.vmid];  // compiled even without NICs
  for (const auto& [vmid, nics] : by_vm) {
    HEARTH_ASSIGN_OR_RETURN(Config c, get({FwEnv::kVm, vmid}));
    in.vms.push_back({vmid, c.options, c.rules, nics});
  }
  if (deps_.local_networks) in.local_networks = deps_.local_networks();
  in.management_ports = deps_.management_ports;
  return in;
}

Status FirewallService::ApplyScript(const std::string& script, bool guests) {
  if (script == applied_) return Ok();
  if (guests && deps_.enable_bridge_netfilter) HEARTH_TRY(deps_.enable_bridge_netfilter());
  HEARTH_TRY(deps_.nft.Run(script));
  applied_ = script;
  return Ok();
}

// Every stored rule must compile, also where it is not applied now (the datacenter firewall
// off, a VM without firewalled NICs): a rule the kernel would refuse later would stop the
// whole rule set then. So the scope is compiled as if everything were on, and checked.
Status FirewallService::CheckCompiles(const FwScope& scope, const Config& c) {
  FwInputs in;
  in.cluster_options = {{"enable", "1"}};
  if (scope.env == FwEnv::kCluster) {
    in.cluster_options = c.options;
    in.cluster_options["enable"] = "1";
    in.cluster_rules = c.rules;
  } else if (scope.env == FwEnv::kHost) {
    in.host_options = c.options;
    in.host_options["enable"] = "1";
    in.host_rules = c.rules;
  } else {
    FwVm vm{scope.vmid, c.options, c.rules, {{scope.vmid, 0, ""}}};
    vm.options["enable"] = "1";
    std::set<int> seen = {0};
    for (const auto& r : c.rules) {
      std::string iface = r.Get("iface");
      if (iface.rfind("net", 0) != 0) continue;
      if (auto idx = ParseInt(iface.substr(3)); idx && *idx > 0 && *idx < 64 && seen.insert(static_cast<int>(*idx)).second)
        vm.nics.push_back({scope.vmid, static_cast<int>(*idx), ""});
    }
    in.vms.push_back(vm);
  }
  return deps_.nft.Check(CompileFirewall(in));
}

Status FirewallService::Change(const FwScope& scope, const std::function<Status(Config&)>& fn) {
  HEARTH_ASSIGN_OR_RETURN(Config c, Load(scope));
  HEARTH_TRY(fn(c));
  HEARTH_TRY(CheckCompiles(scope, c));
  HEARTH_ASSIGN_OR_RETURN(FwInputs in, Inputs(std::make_pair(scope, c)));
  std::string script = CompileFirewall(in);
  HEARTH_TRY(ApplyScript(script, script.find("table bridge hearth {") != std::string::npos));
  return Save(scope, c);
}

Status FirewallService::Reapply() {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(FwInputs in, Inputs(std::nullopt));
  std::string script = CompileFirewall(in);
  if (applied_.empty() && script == CompileFirewall({})) {
    // Off, and nothing applied by this run: touch nftables only to remove what an earlier
    // run left (a crash between applying and storing a change).
    if (!deps_.nft.Run("list table inet hearth") && !deps_.nft.Run("list table bridge hearth")) return Ok();
  }
  return ApplyScript(script, script.find("table bridge hearth {") != std::string::npos);
}

std::string FirewallService::Applied() {
  std::lock_guard lock(mu_);
  return applied_;
}

Status FirewallService::Start() {
  // Whatever hearth applied before (this or an earlier run) is replaced as a whole.
  if (auto done = Reapply(); !done) spdlog::error("firewall: cannot apply the stored rule set: {}", done.error().message);
  watcher_ = std::thread([this] { Watch(); });
  return Ok();
}

void FirewallService::Watch() {
  uint64_t seen = deps_.vms_generation ? deps_.vms_generation() : 0;
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(500));
    if (stopping_ || !deps_.vms_generation) continue;
    uint64_t now = deps_.vms_generation();
    if (now == seen) continue;
    seen = now;
    lock.unlock();
    if (auto done = Reapply(); !done) spdlog::error("firewall: cannot apply the rule set: {}", done.error().message);
    lock.lock();
  }
}

void FirewallService::SetApiPort(int port) {
  {
    std::lock_guard lock(mu_);
    auto& ports = deps_.management_ports;
    if (port <= 0 || std::find(ports.begin(), ports.end(), port) != ports.end()) return;
    ports.insert(ports.begin(), port);
  }
  if (auto done = Reapply(); !done) spdlog::error("firewall: cannot apply the rule set: {}", done.error().message);
}

Status FirewallService::ForgetVm(int vmid) {
  std::lock_guard lock(mu_);
  // The Store has no delete for meta keys: an empty value is "none", as Load reads it.
  return deps_.store.PutMeta(Key({FwEnv::kVm, vmid}), "");
}

Result<FwFields> FirewallService::Options(const FwScope& scope) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Config c, Load(scope));
  return c.options;
}

Status FirewallService::SetOptions(const FwScope& scope, const FwFields& set, const std::vector<std::string>& del,
                                   const std::string& digest) {
  std::lock_guard lock(mu_);
  return Change(scope, [&](Config& c) -> Status {
    if (!digest.empty() && digest != OptionsDigest(c.options)) return Fail(Aborted(kModified));
    auto keys = FwOptionKeys(scope.env);
    for (const auto& k : del) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) return Fail(FieldError("delete", "no such option '" + k + "'"));
      c.options.erase(k);
    }
    HEARTH_TRY(VerifyFwOptions(scope.env, set));
    for (const auto& [k, v] : set) c.options[k] = v;
    return Ok();
  });
}

Result<std::vector<FwRule>> FirewallService::Rules(const FwScope& scope) {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(Config c, Load(scope));
  return c.rules;
}

Status FirewallService::AddRule(const FwScope& scope, FwFields fields) {
  std::lock_guard lock(mu_);
  return Change(scope, [&](Config& c) -> Status {
    FwRule rule;
    for (const auto& [k, v] : fields)
      if (!v.empty() && v != "-") rule.f[k] = v;  // copy_rule_data: '' and '-' mean unset
    HEARTH_TRY(VerifyFwRule(rule, scope.env, {}));
    if (!rule.Has("enable")) rule.f["enable"] = "0";  // a new rule is off unless asked (Proxmox)
    c.rules.insert(c.rules.begin(), rule);  // always first: Proxmox ignores `pos` on create
    return Ok();
  });
}

Status FirewallService::UpdateRule(const FwScope& scope, int pos, const FwFields& set, const std::vector<std::string>& del,
                                   std::optional<int> moveto, const std::string& digest) {
  std::lock_guard lock(mu_);
  return Change(scope, [&](Config& c) -> Status {
    if (!digest.empty() && digest != RulesDigest(c.rules)) return Fail(Aborted(kModified));
    if (pos < 0 || pos >= static_cast<int>(c.rules.size()))
      return Fail(FailedPrecondition("no rule at position " + std::to_string(pos)));
    if (moveto && *moveto != pos) {
      // Re-inserted before the rule that was at `moveto` (pve-firewall's update_rule).
      FwRule r = c.rules[pos];
      c.rules.erase(c.rules.begin() + pos);
      int at = *moveto > pos ? *moveto - 1 : *moveto;
      at = std::min<int>(at, static_cast<int>(c.rules.size()));
      c.rules.insert(c.rules.begin() + at, r);
      return Ok();
    }
    FwRule r = c.rules[pos];
    for (const auto& [k, v] : set) {
      if (v.empty() || v == "-") r.f.erase(k);
      else r.f[k] = v;
    }
    const auto& known = FwRuleFields();
    for (const auto& k : del) {
      if (std::find(known.begin(), known.end(), k) == known.end())
        return Fail(FieldError("delete", "no such property ('" + k + "')"));
      if (k == "type" || k == "action") return Fail(FieldError("delete", "unable to delete required property '" + k + "'"));
      r.f.erase(k);
    }
    HEARTH_TRY(VerifyFwRule(r, scope.env, {}));
    c.rules[pos] = r;
    return Ok();
  });
}

Status FirewallService::DeleteRule(const FwScope& scope, int pos, const std::string& digest) {
  std::lock_guard lock(mu_);
  return Change(scope, [&](Config& c) -> Status {
    if (!digest.empty() && digest != RulesDigest(c.rules)) return Fail(Aborted(kModified));
    if (pos < 0 || pos >= static_cast<int>(c.rules.size()))
      return Fail(FailedPrecondition("no rule at position " + std::to_string(pos)));
    c.rules.erase(c.rules.begin() + pos);
    return Ok();
  });
}

}  // namespace hearth
