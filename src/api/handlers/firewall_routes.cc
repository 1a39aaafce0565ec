// The firewall API as pve-firewall's (docs/reference/pve-firewall.md): options and rules of
// the datacenter (/cluster/firewall), the node (/nodes/{node}/firewall) and a VM
// (/nodes/{node}/qemu/{vmid}/firewall), the macros, and the directory indexes. Security
// groups, IP sets and aliases are listed (empty) but not yet writable.
#include "api/handlers/handlers.h"
#include "core/strings.h"
#include "firewall/firewall.h"

namespace hearth {
namespace {

ParamSpec Pattern(ParamSpec p, size_t lo, size_t hi) {
  p.max_length = hi;
  p.check = [lo](const std::string& v) -> std::string {
    bool ok = v.size() >= lo && std::isalpha(static_cast<unsigned char>(v[0]));
    for (char c : v) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
    return ok ? "" : "value does not match the regex pattern";
  };
  return p;
}

ParamSpec DigestParam() { return MaxLen(PString("digest", "Prevent changes if current configuration file has a different digest."), 64); }

ParamSpec DeleteParam() {
  ParamSpec del = MaxLen(PString("delete", "A list of settings you want to delete."), 4096);
  del.check = [](const std::string& v) -> std::string {
    for (const auto& k : SplitAny(v, ",; \t")) {
      if (k.empty()) continue;
      bool ok = k.size() >= 2 && std::isalpha(static_cast<unsigned char>(k[0]));
      for (char ch : k) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-');
      if (!ok) return "invalid format - invalid configuration ID '" + k + "'";
    }
    return "";
  };
  return del;
}

std::vector<std::string> DeleteList(const Params& p) {
  std::vector<std::string> out;
  for (const auto& k : SplitAny(p.GetOr("delete", ""), ",; \t"))
    if (!k.empty()) out.push_back(k);
  return out;
}

// $rule_properties (FW:1544).
std::vector<ParamSpec> RuleSpecs() {
  return {PEnum("type", {"in", "out", "forward", "group"}),
          Pattern(PString("action"), 2, 20),
          MaxLen(PString("macro"), 128),
          MaxLen(PString("source"), 512),
          MaxLen(PString("dest"), 512),
          MaxLen(PString("proto"), 64),
          MaxLen(PString("dport"), 512),
          MaxLen(PString("sport"), 512),
          MaxLen(PString("icmp-type"), 64),
          MaxLen(PString("iface"), 20),
          PEnum("log", FwLogLevels()),
          PInt("enable", 0),
          MaxLen(PString("comment"), 4096),
          PInt("pos", 0)};
}

FwFields RuleParams(const Params& p) {
  FwFields f;
  for (const auto& k : FwRuleFields())
    if (auto v = p.Get(k)) f[k] = *v;
  return f;
}

nlohmann::json RuleJson(const FwRule& r, int pos, bool pos_as_string, const std::string& digest) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : r.f) {
    if (k == "enable" || k == "ipversion") j[k] = ParseInt(v).value_or(0);
    else j[k] = v;
  }
  if (!j.contains("enable")) j["enable"] = 0;
  // GET .../rules lists `pos` as a number, GET .../rules/{pos} echoes the path's string (bpg).
  if (pos_as_string) j["pos"] = std::to_string(pos);
  else j["pos"] = pos;
  j["digest"] = digest;
  return j;
}

nlohmann::json OptionsJson(FwEnv env, const FwFields& options) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : options) {
    if (FwOptionIsNumber(env, k)) j[k] = ParseInt(v).value_or(0);
    else j[k] = v;
  }
  j["digest"] = FirewallService::OptionsDigest(options);
  return j;
}

std::vector<ParamSpec> OptionSpecs(FwEnv env) {
  std::vector<ParamSpec> out;
  for (const auto& k : FwOptionKeys(env)) out.push_back(MaxLen(PString(k), 256));  // checked by VerifyFwOptions
  out.push_back(DeleteParam());
  out.push_back(DigestParam());
  return out;
}

FwFields OptionParams(FwEnv env, const Params& p) {
  FwFields f;
  for (const auto& k : FwOptionKeys(env))
    if (auto v = p.Get(k)) f[k] = *v;
  return f;
}

struct Level {
  std::string base;      // "/cluster/firewall"
  FwEnv env;
  std::string acl;       // ACL path
  std::string read, write;  // privileges
  std::vector<ParamSpec> path_params;
};

FwScope ScopeOf(const Level& l, ApiContext& c) {
  FwScope scope{l.env, 0};
  if (l.env == FwEnv::kVm) scope.vmid = static_cast<int>(ParseInt(c.params.GetOr("vmid", "0")).value_or(0));
  return scope;
}

// A VM's firewall exists only with the VM.
Status CheckScope(ApiServices& s, const FwScope& scope) {
  if (scope.env != FwEnv::kVm) return Ok();
  HEARTH_ASSIGN_OR_RETURN(auto cfg, s.vms.Config(scope.vmid, true));
  (void)cfg;
  return Ok();
}

std::vector<ParamSpec> With(std::vector<ParamSpec> a, const std::vector<ParamSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void RegisterLevel(Router& r, ApiServices& s, const Level& l) {
  FirewallService& fw = *s.firewall;
  r.Add({"GET", l.base + "/options", l.path_params, false, l.read, l.acl, true, true, false,
         [&fw, &s, l](ApiContext& c) -> Result<ApiReply> {
           FwScope scope = ScopeOf(l, c);
           HEARTH_TRY(CheckScope(s, scope));
           HEARTH_ASSIGN_OR_RETURN(auto options, fw.Options(scope));
           return Data(OptionsJson(l.env, options));
         },
         "Get Firewall options."});
  r.Add({"PUT", l.base + "/options", With(l.path_params, OptionSpecs(l.env)), false, l.write, l.acl, true, true, false,
         [&fw, &s, l](ApiContext& c) -> Result<ApiReply> {
           FwScope scope = ScopeOf(l, c);
           HEARTH_TRY(CheckScope(s, scope));
           HEARTH_TRY(fw.SetOptions(scope, OptionParams(l.env, c.params), DeleteList(c.params), c.params.GetOr("digest", "")));
           return Data(nullptr);
         },
         "Set Firewall options."});
  r.Add({"GET", l.base + "/rules", l.path_params, false, l.read, l.acl, true, true, false,
         [&fw, &s, l](ApiContext& c) -> Result<ApiReply> {
           FwScope scope = ScopeOf(l, c);
           HEARTH_TRY(CheckScope(s, scope));
           HEARTH_ASSIGN_OR_RETURN(auto rules, fw.Rules(scope));
           std::string digest = FirewallService::RulesDigest(rules);
           nlohmann::json out = nlohmann::json::array();
           for (size_t i = 0; i < rules.size(); ++i) out.push_back(RuleJson(rules[i], static_cast<int>(i), false, digest));
           return Data(out);
         },
         "List rules."});
  std::vector<ParamSpec> create = With(l.path_params, RuleSpecs());
  create.push_back(DigestParam());
  for (auto& p : create)
    if (p.name == "type" || p.name == "action") p = Required(p);
  r.Add({"POST", l.base + "/rules", create, false, l.write, l.acl, true, true, false,
         [&fw, &s, l](ApiContext& c) -> Result<ApiReply> {
           FwScope scope = ScopeOf(l, c);
           HEARTH_TRY(CheckScope(s, scope));
           HEARTH_TRY(fw.AddRule(scope, RuleParams(c.params)));
           return Data(nullptr);
         },
         "Create new rule (inserted at position 0, disabled unless `enable` is given)."});
  std::vector<ParamSpec> one = With(l.path_params, {Required(PInt("pos", 0))});
  r.Add({"GET", l.base + "/rules/{pos}", one, false, l.read, l.acl, true, true, false,
         [&fw, &s, l](ApiContext& c) -> Result<ApiReply> {
           FwScope scope = ScopeOf(l, c);
           HEARTH_TRY(CheckScope(s, scope));
           int pos = static_cast<int>(ParseInt(*c.params.Get("pos")).value_or(0));
           HEARTH_ASSIGN_OR_RETURN(auto rules, fw.Rules(scope));
           if (pos >= static_cast<int>(rules.size())) return Fail(FailedPrecondition("no rule at position " + std::to_string(pos)));
           return Data(RuleJson(rules[pos], pos, true, FirewallService::RulesDigest(rules)));
         },
         "Get single rule data."});
  std::vector<ParamSpec> update = With(one, RuleSpecs());
  update.erase(std::remove_if(update.begin() + static_cast<long>(one.size()), update.end(),
                              [](const ParamSpec& p) { return p.name == "pos"; }),
               update.end());
  update.push_back(PInt("moveto", 0));
  update.push_back(DeleteParam());
  update.push_back(DigestParam());
  r.Add({"PUT", l.base + "/rules/{pos}", update, false, l.write, l.acl, true, true, false,
         [&fw, &s, l](ApiContext& c) -> Result<ApiReply> {
           FwScope scope = ScopeOf(l, c);
           HEARTH_TRY(CheckScope(s, scope));
           int pos = static_cast<int>(ParseInt(*c.params.Get("pos")).value_or(0));
           std::optional<int> moveto;
           if (auto m = c.params.Get("moveto")) moveto = static_cast<int>(ParseInt(*m).value_or(0));
           FwFields set = RuleParams(c.params);
           HEARTH_TRY(fw.UpdateRule(scope, pos, set, DeleteList(c.params), moveto, c.params.GetOr("digest", "")));
           return Data(nullptr);
         },
         "Modify rule data (`moveto` moves it)."});
  r.Add({"DELETE", l.base + "/rules/{pos}", With(one, {DigestParam()}), false, l.write, l.acl, true, true, false,
         [&fw, &s, l](ApiContext& c) -> Result<ApiReply> {
           FwScope scope = ScopeOf(l, c);
           HEARTH_TRY(CheckScope(s, scope));
           int pos = static_cast<int>(ParseInt(*c.params.Get("pos")).value_or(0));
           HEARTH_TRY(fw.DeleteRule(scope, pos, c.params.GetOr("digest", "")));
           return Data(nullptr);
         },
         "Delete rule."});
  // Not writable yet: listed empty so that clients reading them work.
  std::vector<std::string> lists = {"ipset", "aliases"};
  if (l.env == FwEnv::kCluster) lists.push_back("groups");
  if (l.env == FwEnv::kHost) lists.clear();
  for (const auto& name : lists)
    r.Add({"GET", l.base + "/" + name, l.path_params, false, l.read, l.acl, true, true, false,
           [&s, l](ApiContext& c) -> Result<ApiReply> {
             HEARTH_TRY(CheckScope(s, ScopeOf(l, c)));
             return Data(nlohmann::json::array());
           },
           "List " + name + " (hearth: not writable yet)."});
  std::vector<std::string> index = {"rules", "options"};
  if (l.env == FwEnv::kCluster) index = {"aliases", "rules", "options", "groups", "ipset", "macros", "refs"};
  if (l.env == FwEnv::kHost) index = {"rules", "options", "log"};
  if (l.env == FwEnv::kVm) index = {"rules", "aliases", "ipset", "refs", "options"};
  r.Add({"GET", l.base, l.path_params, false, "", "", true, true, false,
         [index](ApiContext&) -> Result<ApiReply> {
           nlohmann::json out = nlohmann::json::array();
           for (const auto& n : index) out.push_back({{"name", n}});
           return Data(out);
         },
         "Directory index."});
}

}  // namespace

void RegisterFirewallRoutes(Router& r, ApiServices& s) {
  if (!s.firewall) return;
  RegisterLevel(r, s, {"/cluster/firewall", FwEnv::kCluster, "/", "Sys.Audit", "Sys.Modify", {}});
  RegisterLevel(r, s, {"/nodes/{node}/firewall", FwEnv::kHost, "/nodes/{node}", "Sys.Audit", "Sys.Modify", {NodeParam()}});
  RegisterLevel(r, s, {"/nodes/{node}/qemu/{vmid}/firewall", FwEnv::kVm, "/vms/{vmid}", "VM.Audit", "VM.Config.Network",
                       {NodeParam(), VmidParam()}});
  r.Add({"GET", "/cluster/firewall/macros", {}, false, "", "", true, true, false,
         [](ApiContext&) -> Result<ApiReply> {
           nlohmann::json out = nlohmann::json::array();
           for (const auto& m : FwMacros()) out.push_back({{"macro", m.name}, {"descr", m.descr}});
           return Data(out);
         },
         "List available macros."});
}

}  // namespace hearth
