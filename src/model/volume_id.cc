#include "model/volume_id.h"

#include <cctype>

#include "core/pattern.h"
#include "core/strings.h"

namespace hearth {

bool IsValidStorageId(std::string_view id) {
  static const Pattern re("[a-z][a-z0-9\\-_.]*[a-z0-9]", /*case_insensitive=*/true);
  return id.size() <= 64 && re.FullMatch(id);
}

Result<VolumeId> ParseVolumeId(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return Fail(InvalidArgument("unable to parse volume ID '" + std::string(text) + "'"));
  VolumeId v{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
  if (!IsValidStorageId(v.storage) || v.volname.empty())
    return Fail(InvalidArgument("unable to parse volume ID '" + std::string(text) + "'"));
  return v;
}

const char* ContentTypeName(ContentType c) {
  switch (c) {
    case ContentType::kImages: return "images";
    case ContentType::kIso: return "iso";
    case ContentType::kVztmpl: return "vztmpl";
    case ContentType::kBackup: return "backup";
    case ContentType::kSnippets: return "snippets";
    case ContentType::kImport: return "import";
    case ContentType::kRootdir: return "rootdir";
  }
  return "?";
}

std::optional<ContentType> ParseContentType(std::string_view name) {
  for (auto c : {ContentType::kImages, ContentType::kIso, ContentType::kVztmpl, ContentType::kBackup,
                 ContentType::kSnippets, ContentType::kImport, ContentType::kRootdir})
    if (name == ContentTypeName(c)) return c;
  return std::nullopt;
}

std::optional<DiskName> ParseDiskName(std::string_view name) {
  static const Pattern disk_re("(vm|base)-([1-9][0-9]{0,8})-disk-([0-9]{1,4})");
  static const Pattern ci_re("vm-([1-9][0-9]{0,8})-cloudinit");
  // The patterns bound the digits, so the numbers always fit.
  if (auto m = disk_re.Capture(name))
    return DiskName{(*m)[0] == "base", static_cast<int>(*ParseInt((*m)[1])), static_cast<int>(*ParseInt((*m)[2])), false, {}};
  if (auto m = ci_re.Capture(name)) return DiskName{false, static_cast<int>(*ParseInt((*m)[0])), 0, true, {}};
  static const Pattern state_re("vm-([1-9][0-9]{0,8})-state-([A-Za-z][A-Za-z0-9_\\-]{0,39})");
  if (auto m = state_re.Capture(name)) return DiskName{false, static_cast<int>(*ParseInt((*m)[0])), 0, false, (*m)[1]};
  return std::nullopt;
}

namespace {

// A plain file name: no slashes, not hidden, a conservative character set.
bool IsSafeFileName(std::string_view n) {
  static const Pattern re("[A-Za-z0-9_][A-Za-z0-9_.+\\-]*");
  return n.size() <= 255 && n != "." && n != ".." && re.FullMatch(n);
}

std::string Ext(std::string_view name) {
  size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? "" : std::string(name.substr(dot + 1));
}

// "100/vm-100-disk-0.qcow2" -> DirVolume (images).
Result<DirVolume> ParseImage(std::string_view owner, std::string_view file, const std::string& original) {
  auto bad = [&] { return Fail(InvalidArgument("unable to parse directory volume name '" + original + "'")); };
  auto vmid = ParseUint(owner);
  if (!vmid || owner[0] == '0' || owner[0] == '+' || !IsSafeFileName(file)) return bad();
  std::string ext = Ext(file);
  if (ext != "raw" && ext != "qcow2" && ext != "vmdk") return bad();
  auto dn = ParseDiskName(file.substr(0, file.size() - ext.size() - 1));
  if (!dn || dn->vmid != static_cast<int>(*vmid)) return bad();
  DirVolume v;
  v.content = ContentType::kImages;
  v.name = std::string(file);
  v.vmid = dn->vmid;
  v.format = ext;
  v.is_base = dn->base;
  return v;
}

}  // namespace

std::string NormalizeContentFilename(std::string_view client_name) {
  std::string name(client_name);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();  // Perl's chomp
  size_t slash = name.find_last_of("/\\");
  if (slash != std::string::npos) name = name.substr(slash + 1);
  for (auto& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '_';
  return name;
}

Status CheckUploadFileName(ContentType content, std::string_view name) {
  auto bad = [](const std::string& why) { return Fail(FieldError("filename", why)); };
  static const Pattern iso(".+\\.([iI][sS][oO]|[iI][mM][gG])");
  static const Pattern vztmpl(".+\\.([tT][aA][rR]|[tT][aA][rR]\\.([gG][zZ]|[xX][zZ]|[zZ][sS][tT]|[bB][zZ]2))");
  static const Pattern import("[a-zA-Z0-9\\-.+=_]+\\.(ova|qcow2|raw|vmdk)");
  if (content == ContentType::kIso && !iso.FullMatch(name)) return bad("wrong file extension");
  if (content == ContentType::kVztmpl && !vztmpl.FullMatch(name)) return bad("wrong file extension");
  if (content == ContentType::kImport && !import.FullMatch(name)) return bad("invalid filename or wrong extension");
  if (!IsSafeFileName(name)) return bad("invalid file name '" + std::string(name) + "' (no leading '.', at most 255 characters)");
  return Ok();
}

Result<DirVolume> ParseDirVolname(std::string_view volname) {
  std::string original(volname);
  auto bad = [&] { return Fail(InvalidArgument("unable to parse directory volume name '" + original + "'")); };
  auto parts = Split(volname, '/');
  if (parts.size() == 2) {
    const std::string& dir = parts[0];
    const std::string& file = parts[1];
    if (!dir.empty() && std::isdigit(static_cast<unsigned char>(dir[0]))) return ParseImage(dir, file, original);
    if (!IsSafeFileName(file)) return bad();
    DirVolume v;
    v.name = file;
    std::string ext = Ext(file);
    if (dir == "iso") {
      if (ToLower(ext) != "iso" && ToLower(ext) != "img") return bad();
      v.content = ContentType::kIso;
      v.format = "iso";
    } else if (dir == "snippets") {
      v.content = ContentType::kSnippets;
      v.format = "snippet";
    } else if (dir == "import") {
      v.content = ContentType::kImport;
      v.format = ext;
    } else if (dir == "vztmpl") {
      v.content = ContentType::kVztmpl;
      v.format = ext;
    } else if (dir == "backup") {
      v.content = ContentType::kBackup;
      v.format = ext;
    } else {
      return bad();
    }
    return v;
  }
  if (parts.size() == 4) {  // linked clone: <base vmid>/<base file>/<vmid>/<file>
    auto base = ParseImage(parts[0], parts[1], original);
    if (!base || !base->is_base) return bad();
    auto img = ParseImage(parts[2], parts[3], original);
    if (!img || img->is_base) return bad();
    img->base_volname = parts[0] + "/" + parts[1];
    return img;
  }
  return bad();
}

std::string DirVolume::RelativePath() const {
  switch (content) {
    case ContentType::kImages: return "images/" + std::to_string(vmid) + "/" + name;
    case ContentType::kIso: return "iso/" + name;
    case ContentType::kVztmpl: return "template/" + name;
    case ContentType::kBackup: return "dump/" + name;
    case ContentType::kSnippets: return "snippets/" + name;
    case ContentType::kImport: return "import/" + name;
    case ContentType::kRootdir: return "private/" + name;
  }
  return name;
}

int VolumeOwner(const VolumeId& id) {
  size_t slash = id.volname.find('/');
  if (slash == std::string::npos || slash < 3 || slash > 9 || id.volname[0] == '0') return 0;
  for (size_t i = 0; i < slash; ++i)
    if (id.volname[i] < '0' || id.volname[i] > '9') return 0;
  return std::stoi(id.volname.substr(0, slash));
}

}  // namespace hearth
