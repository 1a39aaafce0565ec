#include "model/drive.h"

#include <cmath>

#include "core/pattern.h"
#include "core/strings.h"
#include "core/units.h"

namespace hearth {
namespace {

struct BusInfo {
  DriveBus bus;
  const char* prefix;
  int max_index;
};
constexpr BusInfo kBuses[] = {
    {DriveBus::kIde, "ide", 3},          {DriveBus::kSata, "sata", 5},
    {DriveBus::kScsi, "scsi", 30},       {DriveBus::kVirtio, "virtio", 15},
    {DriveBus::kEfidisk, "efidisk", 0},  {DriveBus::kTpmstate, "tpmstate", 0},
    {DriveBus::kUnused, "unused", 255},
};

std::string CheckSerial(std::string_view v) {
  return v.size() > 60 ? "serial is too long (max 60 characters)" : "";
}

std::string CheckWwn(std::string_view v) {
  static const Pattern re("(0x)[0-9a-fA-F]{16}");
  return re.FullMatch(v) ? "" : "invalid wwn '" + std::string(v) + "'";
}

PropDef B(const char* n) { return {n, PropType::kBoolean}; }
PropDef E(const char* n, std::vector<std::string> v) { return {n, PropType::kEnum, std::move(v)}; }
PropDef I(const char* n, double lo = 0) { return {n, PropType::kInteger, {}, lo}; }
PropDef N(const char* n) { return {n, PropType::kNumber, {}, 0.0}; }
PropDef S(const char* n) { return {n, PropType::kString}; }

// Keys shared by every disk-like bus.
std::vector<PropDef> CommonDiskProps() {
  std::vector<PropDef> p = {
      S("file"),
      {"volume", PropType::kString, {}, {}, {}, "file"},
      E("media", {"disk", "cdrom"}),
      {"size", PropType::kSize},
      E("format", {"raw", "qcow2", "vmdk", "cow", "qed", "cloop"}),
      E("cache", {"none", "writethrough", "writeback", "unsafe", "directsync"}),
      E("discard", {"on", "ignore"}),
      E("aio", {"native", "threads", "io_uring"}),
      {"serial", PropType::kString, {}, {}, {}, "", CheckSerial},
      B("backup"), B("replicate"), B("snapshot"), B("shared"), B("detect_zeroes"),
      E("rerror", {"ignore", "report", "stop"}), E("werror", {"enospc", "ignore", "report", "stop"}),
      {"wwn", PropType::kString, {}, {}, {}, "", CheckWwn},
      S("import-from"),
      I("cyls"), I("heads"), I("secs"), E("trans", {"none", "lba", "auto"}),
  };
  for (const char* t : {"iops", "iops_rd", "iops_wr", "iops_max", "iops_rd_max", "iops_wr_max"})
    p.push_back(I(t));
  for (const char* t : {"iops_max_length", "iops_rd_max_length", "iops_wr_max_length",
                        "bps_max_length", "bps_rd_max_length", "bps_wr_max_length"})
    p.push_back(I(t, 1));
  for (const char* t : {"bps", "bps_rd", "bps_wr", "bps_max", "bps_rd_max", "bps_wr_max"}) p.push_back(I(t));
  for (const char* t : {"mbps", "mbps_rd", "mbps_wr", "mbps_max", "mbps_rd_max", "mbps_wr_max"}) p.push_back(N(t));
  return p;
}

PropertyFormat MakeFormat(DriveBus bus) {
  PropertyFormat f;
  f.default_key = "file";
  switch (bus) {
    case DriveBus::kUnused:
      f.props = {S("file"), {"volume", PropType::kString, {}, {}, {}, "file"}};
      return f;
    case DriveBus::kEfidisk:
      f.props = {S("file"), {"volume", PropType::kString, {}, {}, {}, "file"}, {"size", PropType::kSize},
                 E("format", {"raw", "qcow2", "vmdk"}), E("efitype", {"2m", "4m"}), B("pre-enrolled-keys"),
                 S("ms-cert"), S("import-from")};
      return f;
    case DriveBus::kTpmstate:
      f.props = {S("file"), {"volume", PropType::kString, {}, {}, {}, "file"}, {"size", PropType::kSize},
                 E("version", {"v1.2", "v2.0"}), S("import-from")};
      return f;
    default:
      break;
  }
  f.props = CommonDiskProps();
  if (bus == DriveBus::kScsi || bus == DriveBus::kVirtio) {
    f.props.push_back(B("iothread"));
    f.props.push_back(B("ro"));
  }
  if (bus != DriveBus::kVirtio) f.props.push_back(B("ssd"));
  if (bus == DriveBus::kScsi) {
    f.props.push_back({"queues", PropType::kInteger, {}, 2.0, 16.0});
    f.props.push_back(B("scsiblock"));
    f.props.push_back(S("product"));
    f.props.push_back(S("vendor"));
  }
  if (bus == DriveBus::kIde) f.props.push_back(S("model"));
  return f;
}

}  // namespace

std::string DriveKey::Name() const {
  for (const auto& b : kBuses)
    if (b.bus == bus) return b.prefix + std::to_string(index);
  return "?";
}

std::optional<DriveKey> DriveKey::Parse(std::string_view key) {
  for (const auto& b : kBuses) {
    std::string_view prefix = b.prefix;
    if (!StartsWith(key, prefix)) continue;
    std::string_view digits = key.substr(prefix.size());
    if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
    auto n = ParseUint(digits);
    if (!n || digits[0] == '+' || *n > static_cast<uint64_t>(b.max_index)) return std::nullopt;
    return DriveKey{b.bus, static_cast<int>(*n)};
  }
  return std::nullopt;
}

const PropertyFormat& DriveFormat(DriveBus bus) {
  static const PropertyFormat formats[] = {MakeFormat(DriveBus::kIde),     MakeFormat(DriveBus::kSata),
                                           MakeFormat(DriveBus::kScsi),    MakeFormat(DriveBus::kVirtio),
                                           MakeFormat(DriveBus::kEfidisk), MakeFormat(DriveBus::kTpmstate),
                                           MakeFormat(DriveBus::kUnused)};
  return formats[static_cast<int>(bus)];
}

bool Drive::IsCdrom() const {
  auto it = opts.find("media");
  return it != opts.end() && it->second == "cdrom";
}

std::optional<uint64_t> Drive::SizeBytes() const {
  auto it = opts.find("size");
  if (it == opts.end()) return std::nullopt;
  return ParseSize(it->second);
}

Result<Drive> ParseDrive(DriveBus bus, std::string_view text) {
  HEARTH_ASSIGN_OR_RETURN(PropertyMap map, ParsePropertyString(DriveFormat(bus), text));
  Drive d;
  auto it = map.find("file");
  if (it == map.end() || it->second.empty()) return Fail(InvalidArgument("invalid format - missing volume"));
  d.file = it->second;
  map.erase(it);
  // Sizes are kept canonical ("32G", not "34359738368").
  if (auto s = map.find("size"); s != map.end()) s->second = FormatSize(*ParseSize(s->second));
  d.opts = std::move(map);
  return d;
}

std::string PrintDrive(DriveBus bus, const Drive& drive) {
  PropertyMap all = drive.opts;
  all["file"] = drive.file;
  return PrintPropertyString(DriveFormat(bus), all);
}

std::optional<DriveAllocation> ParseDriveAllocation(std::string_view file) {
  static const Pattern re(R"((?:([^/:\s]+):)?(\d+(?:\.\d+)?|cloudinit))");
  auto m = re.Capture(file);
  if (!m) return std::nullopt;
  DriveAllocation a;
  a.storage = (*m)[0];
  if ((*m)[1] == "cloudinit") {
    if (a.storage.empty()) return std::nullopt;
    a.cloudinit = true;
    return a;
  }
  // Sizes past what any storage can hold (2^60 bytes) are flagged rather than wrapped.
  auto gib = ParseDouble((*m)[1]);
  if (!gib || *gib * static_cast<double>(kGiB) > 1.15e18) {
    a.oversized = true;
    return a;
  }
  a.size_bytes = static_cast<uint64_t>(std::llround(*gib * static_cast<double>(kGiB)));
  return a;
}

}  // namespace hearth
