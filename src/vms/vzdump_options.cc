#include "vms/vzdump_options.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/strings.h"
#include "model/property_string.h"
#include "model/retention.h"

namespace hearth {
namespace {

using T = VzdumpOptionType;

const PropertyFormat& PerformanceFormat() {  // backup-performance
  static const PropertyFormat f{{{"max-workers", PropType::kInteger, {}, 1, 256},
                                 {"pbs-entries-max", PropType::kInteger, {}, 1, std::nullopt}},
                                ""};
  return f;
}

const PropertyFormat& FleecingFormat() {  // backup-fleecing
  static const PropertyFormat f{{{"enabled", PropType::kBoolean}, {"storage", PropType::kString}}, "enabled"};
  return f;
}

bool True(const VzdumpOptions& o, const std::string& k) {
  auto it = o.find(k);
  return it != o.end() && ParseBooleanWord(it->second).value_or(false);
}

bool Has(const VzdumpOptions& o, const std::string& k) { return o.count(k) > 0; }

std::string Get(const VzdumpOptions& o, const std::string& k, const std::string& fallback = "") {
  auto it = o.find(k);
  return it == o.end() ? fallback : it->second;
}

Status CheckValue(const VzdumpOptionInfo& info, const std::string& v) {
  const std::string& k = info.name;
  switch (info.type) {
    case T::kBool:
      if (!ParseBooleanWord(v)) return Fail(FieldError(k, "type check ('boolean') failed - got '" + v + "'"));
      break;
    case T::kInt: {
      auto n = ParseInt(v);
      if (!n) return Fail(FieldError(k, "type check ('integer') failed - got '" + v + "'"));
      if (*n < info.min) return Fail(FieldError(k, "value must have a minimum value of " + std::to_string(info.min)));
      if (info.max >= 0 && *n > info.max)
        return Fail(FieldError(k, "value must have a maximum value of " + std::to_string(info.max)));
      break;
    }
    case T::kPropertyString: {
      if (k == "prune-backups") {
        HEARTH_TRY(ParseKeepOptionsParam(k, v).map([](auto&&) {}));
      } else {
        auto parsed = ParsePropertyString(k == "fleecing" ? FleecingFormat() : PerformanceFormat(), v);
        if (!parsed) return Fail(FieldError(k, "invalid format - " + QualifyFormatError(parsed.error().message, k)));
        if (k == "fleecing" && parsed->count("enabled") && parsed->at("enabled") == "1" && !parsed->count("storage"))
          return Fail(FieldError(k, "'storage' parameter is required when 'enabled' is set"));
      }
      break;
    }
    case T::kString:
      if (!info.choices.empty() && std::find(info.choices.begin(), info.choices.end(), v) == info.choices.end())
        return Fail(FieldError(k, "value '" + v + "' does not have a value in the enumeration '" + Join(info.choices, ", ") + "'"));
      if (info.max_length && v.size() > info.max_length)
        return Fail(FieldError(k, "value may only be " + std::to_string(info.max_length) + " characters long"));
      if (k == "vmid" || k == "exclude") {
        HEARTH_ASSIGN_OR_RETURN(auto ids, ParseVmidList(k, v));
        (void)ids;
      }
      if (k == "notes-template")
        if (auto why = NotesTemplateProblem(v); !why.empty()) return Fail(FieldError(k, why));
      if (k == "node") {  // pve-node
        if (!IsPveNodeName(v)) return Fail(FieldError(k, "invalid format - value does not look like a valid node name"));
      }
      break;
  }
  return Ok();
}

}  // namespace

bool IsPveNodeName(std::string_view v) {
  return !v.empty() && v.size() <= 64 && std::isalnum(static_cast<unsigned char>(v.front())) &&
         std::isalnum(static_cast<unsigned char>(v.back())) &&
         std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

const std::vector<VzdumpOptionInfo>& VzdumpOptionTable() {
  static const std::vector<VzdumpOptionInfo> table = {
      {"vmid"},
      {"node", T::kString, 0, -1, {}, 64},
      {"all", T::kBool},
      {"stdexcludes", T::kBool},
      {"compress", T::kString, 0, -1, {"0", "1", "gzip", "lzo", "zstd"}},
      {"pigz", T::kInt},
      {"zstd", T::kInt},
      {"quiet", T::kBool},
      {"mode", T::kString, 0, -1, {"snapshot", "suspend", "stop"}},
      {"exclude"},
      {"mailto", T::kString, 0, -1, {}, 1024},
      {"mailnotification", T::kString, 0, -1, {"always", "failure"}},
      {"notification-mode", T::kString, 0, -1, {"auto", "legacy-sendmail", "notification-system"}},
      {"storage", T::kString, 0, -1, {}, 64},
      {"stop", T::kBool},
      {"bwlimit", T::kInt},
      {"ionice", T::kInt, 0, 8},
      {"performance", T::kPropertyString},
      {"fleecing", T::kPropertyString},
      {"lockwait", T::kInt},
      {"stopwait", T::kInt},
      {"prune-backups", T::kPropertyString},
      {"remove", T::kBool},
      {"pool", T::kString, 0, -1, {}, 64},
      {"notes-template", T::kString, 0, -1, {}, 1024},
      {"protected", T::kBool},
      {"pbs-change-detection-mode", T::kString, 0, -1, {"legacy", "data", "metadata"}},
  };
  return table;
}

const VzdumpOptionInfo* FindVzdumpOption(const std::string& name) {
  for (const auto& o : VzdumpOptionTable())
    if (o.name == name) return &o;
  return nullptr;
}

Result<std::vector<int>> ParseVmidList(const std::string& field, const std::string& text) {
  std::vector<int> out;
  for (auto part : SplitAny(text, ",; \t\n")) {
    if (part.empty()) continue;
    bool digits = part.size() >= 3 && part.size() <= 9 && part[0] >= '1' && part[0] <= '9' &&
                  std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits)
      return Fail(FieldError(field, "invalid format - value '" + std::string(part) + "' does not look like a valid VM ID"));
    out.push_back(static_cast<int>(*ParseInt(part)));
  }
  return out;
}

std::string NotesTemplateProblem(const std::string& t) {
  if (t.find('\n') != std::string::npos) return "contains a line feed";
  std::vector<std::string> unknown;
  for (size_t i = 0; i < t.size(); ++i) {
    // A backslash with a character after it (a trailing one is left as it is, as Proxmox).
    if (t[i] == '\\' && i + 1 < t.size()) {
      if (t[i + 1] != '\\' && t[i + 1] != 'n')
        unknown.push_back("escape sequence '\\" + std::string(1, t[i + 1]) + "' at char " + std::to_string(i));
      ++i;
    }
  }
  for (size_t at = 0; (at = t.find("{{", at)) != std::string::npos;) {
    size_t end = t.find("}}", at + 2);
    if (end == std::string::npos) break;
    std::string name = t.substr(at + 2, end - at - 2);
    bool plain = !name.empty() && name.find_first_of(" \t{}") == std::string::npos;
    if (plain && name != "cluster" && name != "guestname" && name != "node" && name != "vmid")
      unknown.push_back("variable '" + name + "' at char " + std::to_string(at + 4));  // Proxmox: match end - name length
    at = end + 2;
  }
  if (unknown.empty()) return "";
  return "found unknown: " + Join(unknown, ", ");
}

Status VerifyVzdumpOptions(const VzdumpOptions& opts, bool need_selection) {
  for (const auto& [k, v] : opts) {
    const VzdumpOptionInfo* info = FindVzdumpOption(k);
    if (!info) return Fail(FieldError(k, "property is not defined in schema and the schema does not allow additional properties"));
    HEARTH_TRY(CheckValue(*info, v));
  }
  if (True(opts, "all") && Has(opts, "vmid")) return Fail(FieldError("all", "option conflicts with option 'vmid'"));
  if (Has(opts, "exclude") && Has(opts, "vmid")) return Fail(FieldError("exclude", "option conflicts with option 'vmid'"));
  if (Has(opts, "pool") && Has(opts, "vmid")) return Fail(FieldError("pool", "option conflicts with option 'vmid'"));
  // `requires => 'storage'` in Proxmox's schema.
  for (const char* k : {"notes-template", "protected"})
    if (Has(opts, k) && !Has(opts, "storage"))
      return Fail(FieldError("storage", std::string("missing property required by '") + k + "'"));
  if (need_selection && !True(opts, "all") && !Has(opts, "exclude") && !True(opts, "stop") && !Has(opts, "pool") &&
      !Has(opts, "vmid"))
    return Fail(FieldError("vmid", "property is missing"));
  return Ok();
}

std::vector<int> IncludedGuests(const VzdumpOptions& opts, const std::vector<int>& existing) {
  std::set<int> out;
  if (Has(opts, "pool")) return {};  // hearth has no pools yet: a pool names no guests
  if (Has(opts, "vmid")) {
    if (auto ids = ParseVmidList("vmid", Get(opts, "vmid"))) out.insert(ids->begin(), ids->end());
  } else if (True(opts, "all") || Has(opts, "exclude")) {
    std::set<int> exclude;
    if (auto ids = ParseVmidList("exclude", Get(opts, "exclude"))) exclude.insert(ids->begin(), ids->end());
    for (int id : existing)
      if (!exclude.count(id)) out.insert(id);
  }
  return {out.begin(), out.end()};
}

Result<VzdumpRequest> MakeVzdumpRequest(const VzdumpOptions& opts, std::vector<int> guests,
                                        const std::string& storage_prune) {
  HEARTH_TRY(VerifyVzdumpOptions(opts, false));
  VzdumpRequest req;
  std::sort(guests.begin(), guests.end());
  guests.erase(std::unique(guests.begin(), guests.end()), guests.end());
  req.vmids = std::move(guests);
  req.storage = Get(opts, "storage", "local");
  req.mode = Get(opts, "mode", "snapshot");
  req.notes_template = Get(opts, "notes-template");
  req.is_protected = True(opts, "protected");
  req.remove = !Has(opts, "remove") || True(opts, "remove");
  req.stopwait_minutes = static_cast<int>(ParseInt(Get(opts, "stopwait", "10")).value_or(10));
  req.bwlimit_kib = ParseInt(Get(opts, "bwlimit", "0")).value_or(0);
  std::string prune = Get(opts, "prune-backups", storage_prune);
  if (!prune.empty()) {
    HEARTH_ASSIGN_OR_RETURN(req.prune, ParseKeepOptionsParam("prune-backups", prune));
  }
  req.command_line = VzdumpCommandLine(opts, req.vmids);
  return req;
}

std::string VzdumpCommandLine(const VzdumpOptions& opts, const std::vector<int>& guests) {
  std::string cmd = "vzdump";
  if (!Has(opts, "vmid") && !guests.empty() && !True(opts, "all") && !Has(opts, "exclude")) {
    for (int id : guests) cmd += " " + std::to_string(id);
  } else if (Has(opts, "vmid")) {
    for (auto id : SplitAny(Get(opts, "vmid"), ",; \t\n"))
      if (!id.empty()) cmd += " " + std::string(id);
  }
  for (const auto& [k, v] : opts)
    if (k != "vmid") cmd += " --" + k + " " + v;
  return cmd;
}

}  // namespace hearth
