// The vzdump options (pve-guest-common src/PVE/VZDump/Common.pm, `$confdesc`) shared by
// POST /nodes/{node}/vzdump, which runs them at once, and the backup jobs of /cluster/backup,
// which store them and run them on a schedule (pve-manager PVE/Jobs/VZDump.pm). Facts:
// docs/reference/pve-vzdump.md and docs/reference/pve-backup-jobs.md.
//
// Options travel as text, as they arrive on the wire ("vmid" -> "100,101"); these functions
// check them and turn them into a VzdumpRequest. Pure; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "vms/vm_service.h"

namespace hearth {

using VzdumpOptions = std::map<std::string, std::string>;

// How an option's value is typed in Proxmox's schema (and so in a job's JSON: booleans and
// integers as numbers, property strings as objects).
enum class VzdumpOptionType { kString, kBool, kInt, kPropertyString };

struct VzdumpOptionInfo {
  std::string name;
  VzdumpOptionType type = VzdumpOptionType::kString;
  int64_t min = 0, max = -1;           // kInt bounds (max -1: none)
  std::vector<std::string> choices;    // an enum's values, when it is one
  size_t max_length = 0;               // kString limit; 0 = the API's general one
};

// Every option hearth accepts, in Proxmox's order. Left out on purpose: tmpdir, dumpdir,
// script (root-only file system paths and hook scripts; hearth writes backups only into a
// storage) and exclude-path (container file excludes).
const std::vector<VzdumpOptionInfo>& VzdumpOptionTable();
// pve-node: letters, digits and '-', starting and ending with a letter or digit, at most 64.
bool IsPveNodeName(std::string_view name);
const VzdumpOptionInfo* FindVzdumpOption(const std::string& name);

// A `pve-vmid-list` ("100,101;102 103"): each entry ^[1-9][0-9]{2,8}$; an empty list is
// allowed. Errors name `field`: "invalid format - value '1' does not look like a valid VM ID".
Result<std::vector<int>> ParseVmidList(const std::string& field, const std::string& text);

// notes-template (pve-manager PVE/VZDump.pm): only \\ and \n escapes and the variables
// {{cluster}}, {{guestname}}, {{node}}, {{vmid}}. "" when fine, else the problem
// ("found unknown: variable 'x' at char 4").
std::string NotesTemplateProblem(const std::string& text);

// verify_vzdump_parameters (pve-manager PVE/VZDump.pm): each value against its type; the
// conflicts ("option conflicts with option 'vmid'" on all, exclude and pool); prune-backups'
// format; and, when `need_selection`, that the options pick guests at all ("vmid: property is
// missing" unless vmid, all, exclude, pool or stop is set).
Status VerifyVzdumpOptions(const VzdumpOptions& opts, bool need_selection);

// The guests the options cover (get_included_guests): the vmid list, or, with all=1 or an
// exclude list, every guest in `existing` outside exclude. Sorted and unique; listed ids that
// do not exist are kept (the backup then logs them as failed, as Proxmox does).
std::vector<int> IncludedGuests(const VzdumpOptions& opts, const std::vector<int>& existing);

// The request for VmService::Vzdump, for `guests` (IncludedGuests, filtered by the caller's
// permissions). `storage_prune` is the target storage's own prune-backups setting, used when
// the options carry none. Fails only on a value VerifyVzdumpOptions would refuse.
Result<VzdumpRequest> MakeVzdumpRequest(const VzdumpOptions& opts, std::vector<int> guests,
                                        const std::string& storage_prune);

// "vzdump 100 101 --mode snapshot --storage local" (the first line of a backup's task log),
// the options in name order, vmid first.
std::string VzdumpCommandLine(const VzdumpOptions& opts, const std::vector<int>& guests);

}  // namespace hearth
