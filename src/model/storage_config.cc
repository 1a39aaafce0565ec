#include "model/storage_config.h"

#include <algorithm>
#include <set>

#include "core/strings.h"
#include "model/ip.h"
#include "model/property_string.h"

namespace hearth {
namespace {

bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAsciiAlnum(char c) { return IsAsciiAlpha(c) || IsAsciiDigit(c); }

using CT = ContentType;
const std::vector<CT> kAllFileContent = {CT::kImages, CT::kRootdir, CT::kVztmpl, CT::kIso,
                                         CT::kBackup, CT::kSnippets, CT::kImport};

const std::vector<StorageTypeSpec>& Specs() {
  // pve-storage's options() per plugin (content-dirs is left out: hearth does not move
  // content directories).
  static const std::vector<StorageTypeSpec> specs = {
      {"btrfs",
       {"path", "nodes", "shared", "disable", "prune-backups", "max-protected-backups", "content", "format",
        "is_mountpoint", "nocow", "compress", "mkdir", "create-base-path", "create-subdirs", "preallocation",
        "encryption-key"},
       {"path"},
       {"path"},
       kAllFileContent,
       true,
       {CT::kImages, CT::kRootdir},
       {"raw", "subvol"}},
      {"dir",
       {"path", "nodes", "shared", "disable", "prune-backups", "max-protected-backups", "content", "format", "mkdir",
        "create-base-path", "create-subdirs", "is_mountpoint", "bwlimit", "preallocation", "snapshot-as-volume-chain",
        "encryption-key"},
       {"path"},
       {"path", "snapshot-as-volume-chain"},
       kAllFileContent,
       true,
       {CT::kImages, CT::kRootdir},
       {"raw", "qcow2", "vmdk", "subvol"}},
      {"lvmthin",
       {"thinpool", "vgname", "nodes", "disable", "content", "bwlimit"},
       {"thinpool", "vgname"},
       {"thinpool", "vgname"},
       {CT::kImages, CT::kRootdir},
       false,
       {CT::kImages, CT::kRootdir},
       {"raw"}},
      {"nfs",
       {"path", "server", "export", "nodes", "disable", "prune-backups", "max-protected-backups", "options", "content",
        "format", "mkdir", "create-base-path", "create-subdirs", "bwlimit", "preallocation", "snapshot-as-volume-chain",
        "encryption-key"},
       {"export", "path", "server"},
       {"path", "server", "export", "snapshot-as-volume-chain"},
       kAllFileContent,
       false,
       {CT::kImages},
       {"raw", "qcow2", "vmdk"},
       true},
      {"zfspool",
       {"pool", "blocksize", "sparse", "nodes", "disable", "content", "bwlimit", "mountpoint"},
       {"pool"},
       {"pool"},
       {CT::kImages, CT::kRootdir},
       false,
       {CT::kImages, CT::kRootdir},
       {"raw", "subvol"}},
  };
  return specs;
}

bool Contains(const std::vector<std::string_view>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

Error FormatError(const std::string& field, const std::string& message) {
  return FieldError(field, "invalid format - " + message);
}

bool IsNodeName(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAsciiAlnum(c) || c == '-'; });
}

// An absolute path without "..", NUL, control characters or a trailing newline.
bool IsAbsolutePath(std::string_view s) {
  if (s.empty() || s.front() != '/' || s.size() > 4096) return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  for (const auto& part : Split(s, '/'))
    if (part == "..") return false;
  return true;
}

// LVM names (pve-storage LVMPlugin's lvm-name format).
bool IsLvmName(std::string_view s) {
  if (s.size() < 2 || s.size() > 127 || !IsAsciiAlnum(s.front()) || !IsAsciiAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAsciiAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// A host name or an IP address (Proxmox's pve-storage-server).
bool IsServer(std::string_view s) {
  if (IsIPv4(s) || IsIPv6(s)) return true;
  if (s.empty() || s.size() > 253) return false;
  for (const auto& label : Split(s, '.'))
    if (!IsNodeName(label)) return false;
  return true;
}

// A ZFS pool or dataset ("rpool/data"): never an option to the zfs command.
bool IsZfsDataset(std::string_view s) {
  if (s.empty() || s.size() > 255 || !IsAsciiAlnum(s.front()) || s.back() == '/') return false;
  // ZFS refuses empty, "." and ".." components; so does hearth, before any zfs command sees one.
  for (size_t start = 0; start <= s.size();) {
    size_t end = s.find('/', start);
    std::string_view part = s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAsciiAlnum(c) || c == '_' || c == '-' || c == '.' || c == ':' || c == '/'; });
}

Result<std::string> ZfsBlocksize(std::string_view v) {
  std::string s = ToLower(std::string(v));
  uint64_t mult = 1;
  if (!s.empty() && (s.back() == 'k' || s.back() == 'm')) {
    mult = s.back() == 'k' ? 1024 : 1024 * 1024;
    s.pop_back();
  }
  if (s.empty() || s.size() > 8 || s[0] == '0' || !std::all_of(s.begin(), s.end(), IsAsciiDigit))
    return Fail(FieldError("blocksize", "invalid ZFS blocksize format '" + std::string(v) +
                                            "'. Use a positive number (no leading zeros) with an optional 'k' or 'm' suffix."));
  uint64_t bytes = std::stoull(s) * mult;
  if (bytes < 512 || bytes > (16u << 20) || (bytes & (bytes - 1)) != 0)
    return Fail(FieldError("blocksize", "value '" + std::string(v) +
                                            "' is not a valid ZFS blocksize. Must be a power of 2 between 512B and 16MiB "
                                            "(e.g., 4k, 8k, 16k, 64k, 1m)."));
  return std::string(v);
}

const PropertyFormat& PruneFormat() {
  static const PropertyFormat f = [] {
    PropertyFormat p;
    p.props.push_back({"keep-all", PropType::kBoolean});
    for (const char* k : {"keep-daily", "keep-hourly", "keep-last", "keep-monthly", "keep-weekly", "keep-yearly"}) {
      PropDef d{k, PropType::kInteger};
      d.min = 0;
      p.props.push_back(d);
    }
    return p;
  }();
  return f;
}

const PropertyFormat& BwlimitFormat() {
  static const PropertyFormat f = [] {
    PropertyFormat p;
    for (const char* k : {"clone", "default", "migration", "move", "restore"}) {
      PropDef d{k, PropType::kNumber};
      d.min = 0;
      p.props.push_back(d);
    }
    return p;
  }();
  return f;
}

Result<std::string> PropertyValue(const std::string& key, const PropertyFormat& format, std::string_view v) {
  auto parsed = ParsePropertyString(format, v);
  if (!parsed) return Fail(FormatError(key, QualifyFormatError(parsed.error().message, key)));
  if (key == "prune-backups" && parsed->count("keep-all") && parsed->size() > 1)
    return Fail(FieldError(key, "keep-all cannot be set together with other options."));
  return PrintPropertyString(format, *parsed);
}

// The comma list of content types, canonical (sorted, no duplicates); "none" alone.
Result<std::string> ContentList(std::string_view v) {
  std::set<std::string> names;
  for (const auto& raw : SplitAny(std::string(v), ",; ")) {
    if (raw.empty()) continue;
    if (raw != "none" && !ParseContentType(raw)) return Fail(FormatError("content", "invalid content type '" + raw + "'"));
    names.insert(raw);
  }
  return Join(std::vector<std::string>(names.begin(), names.end()), ",");
}

// The schema's checks of one value (Proxmox's 400s), returning it canonical.
Result<std::string> CanonicalValue(const std::string& key, std::string_view v) {
  if (v.size() > 4096) return Fail(FieldError(key, "value may only be 4096 characters long"));
  if (v.find('\n') != std::string_view::npos || v.find('\r') != std::string_view::npos)
    return Fail(FieldError(key, "property contains a line feed"));
  static const std::set<std::string_view> booleans = {"disable", "shared", "mkdir", "create-base-path", "create-subdirs",
                                                      "sparse", "nocow", "snapshot-as-volume-chain"};
  if (booleans.count(key)) {
    auto b = ParseBooleanWord(v);
    if (!b) return Fail(FieldError(key, "type check ('boolean') failed - got '" + std::string(v) + "'"));
    return std::string(*b ? "1" : "0");
  }
  if (key == "max-protected-backups") {
    auto n = ParseInt(v);
    if (!n) return Fail(FieldError(key, "type check ('integer') failed - got '" + std::string(v) + "'"));
    if (*n < -1) return Fail(FieldError(key, "value must have a minimum value of -1"));
    return std::to_string(*n);
  }
  if (key == "content") return ContentList(v);
  if (key == "compress") {  // hearth's own (btrfs): the compression new disk images get
    if (v != "zstd" && v != "lzo" && v != "zlib")
      return Fail(FieldError(key, "value '" + std::string(v) + "' does not have a value in the enumeration 'zstd, lzo, zlib'"));
    return std::string(v);
  }
  if (key == "nodes") {
    std::set<std::string> nodes;
    for (const auto& n : SplitAny(std::string(v), ",; ")) {
      if (n.empty()) continue;
      if (!IsNodeName(n)) return Fail(FormatError(key, "value does not look like a valid node name"));
      nodes.insert(n);
    }
    return Join(std::vector<std::string>(nodes.begin(), nodes.end()), ",");
  }
  if (key == "path" || key == "export" || key == "mountpoint") {
    if (!IsAbsolutePath(v)) return Fail(FormatError(key, "value does not look like a valid absolute path"));
    return std::string(v);
  }
  if (key == "server") {
    if (!IsServer(v)) return Fail(FormatError(key, "value does not look like a valid server name or IP address"));
    return std::string(v);
  }
  if (key == "vgname" || key == "thinpool") {
    if (!IsLvmName(v)) return Fail(FormatError(key, "lvm name '" + std::string(v) + "' contains illegal characters"));
    return std::string(v);
  }
  if (key == "pool") {
    if (!IsZfsDataset(v)) return Fail(FormatError(key, "value does not look like a valid ZFS pool or dataset name"));
    return std::string(v);
  }
  if (key == "blocksize") return ZfsBlocksize(v);
  if (key == "format") {
    if (v != "raw" && v != "qcow2" && v != "subvol" && v != "vmdk")
      return Fail(FieldError(key, "value '" + std::string(v) + "' does not have a value in the enumeration 'raw, qcow2, subvol, vmdk'"));
    return std::string(v);
  }
  if (key == "preallocation") {
    if (v != "off" && v != "metadata" && v != "falloc" && v != "full")
      return Fail(FieldError(key, "value '" + std::string(v) + "' does not have a value in the enumeration 'off, metadata, falloc, full'"));
    return std::string(v);
  }
  if (key == "prune-backups") return PropertyValue(key, PruneFormat(), v);
  if (key == "encryption-key") {
    // In storage.cfg, the key's fingerprint (PBSPlugin's on_add_hook; "1" for a key without
    // one). The API's value (a key file or "autogen") is turned into it before this check
    // (vms/backup_keys.h); the key itself is kept out of storage.cfg.
    bool ok = v == "1" || v.size() == 95;
    for (size_t i = 0; ok && v != "1" && i < v.size(); ++i)
      ok = i % 3 == 2 ? v[i] == ':' : ((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'));
    if (!ok) return Fail(FieldError(key, "Value does not seems like a valid, JSON formatted encryption key!"));
    return std::string(v);
  }
  if (key == "bwlimit") return PropertyValue(key, BwlimitFormat(), v);
  if (key == "options") {
    if (v.empty() || std::any_of(v.begin(), v.end(), [](char c) { return c == ' ' || c == '\t'; }))
      return Fail(FormatError(key, "invalid options '" + std::string(v) + "'"));
    return std::string(v);
  }
  if (key == "is_mountpoint") {
    if (ParseBooleanWord(v)) return std::string(v);
    if (!IsAbsolutePath(v)) return Fail(FormatError(key, "value is neither a boolean nor an absolute path"));
    return std::string(v);
  }
  return Fail(FieldError(key, "property is not defined in schema and the schema does not allow additional properties"));
}

// Proxmox's decode_value for content (unsupported types warned and dropped) and format.
Result<std::optional<std::string>> DecodeForType(const StorageTypeSpec& spec, const std::string& key,
                                                 const std::string& value, std::vector<std::string>* warnings) {
  auto warn = [&](const std::string& w) {
    if (warnings) warnings->push_back(w);
  };
  if (key == "content") {
    std::vector<std::string> kept;
    bool none = false;
    for (const auto& name : Split(value, ',')) {
      if (name.empty()) continue;
      if (name == "none") {
        none = true;
        continue;
      }
      auto ct = ParseContentType(name);
      if (!ct || std::find(spec.content.begin(), spec.content.end(), *ct) == spec.content.end()) {
        warn("storage does not support content type '" + name + "'");
        continue;
      }
      kept.push_back(name);
    }
    if (none && !kept.empty()) return Fail(Internal("unable to combine 'none' with other content types"));
    if (kept.empty() && !spec.content_none) return Fail(Internal("storage does not support content type 'none'"));
    return std::optional<std::string>(kept.empty() ? "none" : Join(kept, ","));
  }
  if (key == "format" && !Contains(spec.formats, value)) {
    warn("storage does not support format '" + value + "'");
    return std::optional<std::string>();  // dropped, as Proxmox does
  }
  if ((key == "path" && (spec.type == "dir" || spec.type == "btrfs"))) {
    // DirPlugin's check: a narrower alphabet than an absolute path, then canonical.
    bool ok = std::all_of(value.begin(), value.end(), [](char c) {
      return IsAsciiAlnum(c) || c == '-' || c == '/' || c == '_' || c == '.' || c == '@';
    });
    std::string canon;
    for (char c : value)
      if (c != '/' || canon.empty() || canon.back() != '/') canon += c;
    while (canon.size() > 1 && canon.back() == '/') canon.pop_back();
    // Checked on the canonical form: "//" would become "/", which Proxmox then refuses when
    // it reads its own file back (found by fuzzing).
    if (!ok || canon.size() < 2) return Fail(Internal("illegal path for directory storage: " + value));
    return std::optional<std::string>(canon);
  }
  return std::optional<std::string>(value);
}

Status CheckAndSet(const StorageTypeSpec& spec, StorageConfig& cfg, const std::map<std::string, std::string>& params,
                   bool create, std::vector<std::string>* warnings) {
  for (const auto& [key, raw] : params) {
    if (!Contains(spec.options, key)) return Fail(Internal("unexpected property '" + key + "'"));
    if (!create && Contains(spec.fixed, key)) return Fail(Internal("can't change value of fixed parameter '" + key + "'"));
    HEARTH_ASSIGN_OR_RETURN(std::string value, CanonicalValue(key, raw));
    HEARTH_ASSIGN_OR_RETURN(std::optional<std::string> decoded, DecodeForType(spec, key, value, warnings));
    if (decoded && decoded->empty()) cfg.options.erase(key);  // an empty list (nodes "") means unset, as Proxmox
    else if (decoded) cfg.options[key] = *decoded;
  }
  return Ok();
}

}  // namespace

const StorageTypeSpec* FindStorageType(std::string_view type) {
  for (const auto& s : Specs())
    if (s.type == type) return &s;
  return nullptr;
}

const std::vector<std::string_view>& StorageTypeNames() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> n;
    for (const auto& s : Specs()) n.push_back(s.type);
    return n;
  }();
  return names;
}

const std::vector<std::string_view>& StorageOptionNames() {
  static const std::vector<std::string_view> names = [] {
    std::set<std::string_view> all;
    for (const auto& s : Specs()) all.insert(s.options.begin(), s.options.end());
    return std::vector<std::string_view>(all.begin(), all.end());
  }();
  return names;
}

bool StorageOptionFixedEverywhere(std::string_view key) {
  // Proxmox's list, not computed from hearth's types: `pool` and `server` are fixed in every
  // type hearth has, but not in rbd and pbs, so Proxmox's update schema keeps them.
  return key == "path" || key == "export" || key == "vgname" || key == "thinpool";
}

bool StorageOptionIsNumeric(std::string_view key) {
  return key == "disable" || key == "shared" || key == "mkdir" || key == "create-base-path" ||
         key == "create-subdirs" || key == "sparse" || key == "nocow" || key == "snapshot-as-volume-chain" ||
         key == "max-protected-backups";
}

Status CheckStorageId(std::string_view id) {
  std::string quoted = "storage ID '" + std::string(id.substr(0, 80)) + "'";
  if (id.size() < 2) return Fail(FormatError("storage", quoted + " cannot be shorter than 2 characters"));
  bool ok = id.size() <= 64 && IsAsciiAlpha(id.front()) && IsAsciiAlnum(id.back()) &&
            std::all_of(id.begin(), id.end(), [](char c) { return IsAsciiAlnum(c) || c == '-' || c == '_' || c == '.'; });
  if (!ok) return Fail(FormatError("storage", quoted + " contains illegal characters"));
  return Ok();
}

bool StorageConfig::Disabled() const { return Get("disable", "0") == "1"; }

bool StorageConfig::Shared() const {
  auto spec = FindStorageType(type);
  return (spec && spec->always_shared) || Get("shared", "0") == "1";
}

std::vector<ContentType> StorageConfig::Content() const {
  std::vector<ContentType> out;
  for (const auto& name : Split(Get("content"), ','))
    if (auto ct = ParseContentType(name)) out.push_back(*ct);
  return out;
}

bool StorageConfig::EnabledOn(std::string_view node) const {
  if (Disabled()) return false;
  std::string nodes = Get("nodes");
  if (nodes.empty()) return true;
  for (const auto& n : Split(nodes, ','))
    if (n == node) return true;
  return false;
}

std::string StorageConfig::Get(const std::string& key, std::string fallback) const {
  auto it = options.find(key);
  return it == options.end() ? fallback : it->second;
}

namespace {

// btrfs writes NOCOW files uncompressed: both at once would silently give neither.
Status CheckCompression(const StorageConfig& cfg) {
  if (cfg.options.count("compress") && cfg.Get("nocow") == "1")
    return Fail(FieldError("compress", "cannot be used with nocow=1 (btrfs does not compress NOCOW files)"));
  return Ok();
}

}  // namespace

Result<StorageConfig> MakeStorageConfig(std::string_view id, std::string_view type,
                                        const std::map<std::string, std::string>& params,
                                        std::vector<std::string>* warnings) {
  HEARTH_TRY(CheckStorageId(id));
  const StorageTypeSpec* spec = FindStorageType(type);
  if (!spec) {
    std::string names;
    for (auto n : StorageTypeNames()) names += (names.empty() ? "" : ", ") + std::string(n);
    return Fail(FieldError("type", "value '" + std::string(type) + "' does not have a value in the enumeration '" +
                                       names + "'"));
  }
  StorageConfig cfg;
  cfg.id = std::string(id);
  cfg.type = std::string(type);
  std::map<std::string, std::string> given = params;
  if (type == "nfs" && !given.count("path")) given["path"] = "/mnt/pve/" + cfg.id;  // NFSPlugin's default
  HEARTH_TRY(CheckAndSet(*spec, cfg, given, /*create=*/true, warnings));
  for (auto key : spec->required)
    if (!cfg.options.count(std::string(key)))
      return Fail(Internal("missing value for required option '" + std::string(key) + "'"));
  if (!cfg.options.count("content")) {
    std::vector<std::string> names;
    for (ContentType c : spec->default_content) names.push_back(ContentTypeName(c));
    std::sort(names.begin(), names.end());
    cfg.options["content"] = Join(names, ",");
  }
  HEARTH_TRY(CheckCompression(cfg));
  return cfg;
}

Result<StorageConfig> UpdateStorageConfig(const StorageConfig& current, const std::map<std::string, std::string>& set,
                                          const std::vector<std::string>& remove, std::vector<std::string>* warnings) {
  const StorageTypeSpec* spec = FindStorageType(current.type);
  if (!spec) return Fail(Internal("unsupported type '" + current.type + "'"));
  StorageConfig cfg = current;
  HEARTH_TRY(CheckAndSet(*spec, cfg, set, /*create=*/false, warnings));
  for (const auto& key : remove) {
    if (set.count(key)) return Fail(Internal("cannot set and delete property '" + key + "' at the same time!"));
    if (!Contains(spec->options, key)) return Fail(Internal("no such option '" + key + "'"));
    if (Contains(spec->required, key)) return Fail(Internal("unable to delete required option '" + key + "'"));
    if (Contains(spec->fixed, key)) return Fail(Internal("unable to delete fixed option '" + key + "'"));
    cfg.options.erase(key);
  }
  if (!cfg.options.count("content")) {  // deleted: the type's default, as Proxmox reads it back
    std::vector<std::string> names;
    for (ContentType c : spec->default_content) names.push_back(ContentTypeName(c));
    std::sort(names.begin(), names.end());
    cfg.options["content"] = Join(names, ",");
  }
  HEARTH_TRY(CheckCompression(cfg));
  return cfg;
}

std::string PrintStorageSection(const StorageConfig& config) {
  std::string out = config.type + ": " + config.id + "\n";
  if (config.Disabled()) out += "\tdisable\n";
  const StorageTypeSpec* spec = FindStorageType(config.type);
  std::vector<std::string> required, rest;
  for (const auto& [k, v] : config.options) {
    if (k == "disable" || v.empty()) continue;
    bool req = spec && Contains(spec->required, k);
    (req ? required : rest).push_back("\t" + k + " " + v + "\n");
  }
  for (const auto& l : required) out += l;  // std::map order: already sorted
  for (const auto& l : rest) out += l;
  return out;
}

Result<std::vector<StorageConfig>> ParseStorageCfg(std::string_view text, std::vector<std::string>* warnings) {
  if (text.size() > (1u << 20)) return Fail(InvalidArgument("storage configuration larger than 1 MiB"));
  auto warn = [&](const std::string& w) {
    if (warnings) warnings->push_back(w);
  };
  std::vector<StorageConfig> out;
  std::set<std::string> seen;
  std::string type, id;
  std::map<std::string, std::string> params;
  bool in_section = false, skip = false;
  auto finish = [&] {
    if (in_section && !skip) {
      auto cfg = MakeStorageConfig(id, type, params, warnings);
      if (!cfg) {
        warn("storage '" + id + "': " + cfg.error().message + " - section skipped");
      } else if (!seen.insert(id).second) {
        warn("storage '" + id + "' defined twice - second section skipped");
      } else {
        out.push_back(std::move(*cfg));
      }
    }
    in_section = skip = false;
    params.clear();
  };
  size_t line_no = 0;
  for (const auto& raw : Split(std::string(text), '\n')) {
    ++line_no;
    std::string line = raw;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string trimmed(Trim(line));
    if (!trimmed.empty() && trimmed[0] == '#') continue;
    if (line.empty()) {
      finish();
      continue;
    }
    bool indented = line[0] == ' ' || line[0] == '\t';
    if (!indented) {
      finish();
      size_t colon = trimmed.find(':');
      std::string t = colon == std::string::npos ? "" : ToLower(std::string(Trim(trimmed.substr(0, colon))));
      std::string rest = colon == std::string::npos ? "" : std::string(Trim(trimmed.substr(colon + 1)));
      in_section = true;
      type = t;
      id = rest;
      if (t.empty() || rest.empty() || rest.find_first_of(" \t") != std::string::npos) {
        warn("line " + std::to_string(line_no) + ": syntax error in section header - section skipped");
        skip = true;
      } else if (!FindStorageType(t)) {
        warn("storage '" + rest + "': unsupported type '" + t + "' - section skipped");
        skip = true;
      }
      continue;
    }
    if (!in_section) {
      warn("line " + std::to_string(line_no) + ": property outside a section - ignored");
      continue;
    }
    if (trimmed.empty()) {
      warn("line " + std::to_string(line_no) + ": ignore config line");
      continue;
    }
    size_t sp = trimmed.find_first_of(" \t");
    std::string key = trimmed.substr(0, sp);
    std::string value = sp == std::string::npos ? "1" : std::string(Trim(trimmed.substr(sp)));  // a bare key: a boolean
    if (params.count(key)) {
      warn("storage '" + id + "': unable to parse value of '" + key + "': duplicate attribute");
      continue;
    }
    const StorageTypeSpec* spec = FindStorageType(type);
    if (spec && !Contains(spec->options, key)) {
      warn("storage '" + id + "': unable to parse value of '" + key + "': unexpected property '" + key + "'");
      continue;
    }
    if (auto v = CanonicalValue(key, value); !v) {
      warn("storage '" + id + "': unable to parse value of '" + key + "': " + v.error().message);
      continue;
    }
    params[key] = value;
  }
  finish();
  return out;
}

}  // namespace hearth
