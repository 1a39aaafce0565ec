#include "qemu/blockdev.h"

#include <sys/stat.h>

#include "qemu/argv.h"

namespace hearth {

namespace {

std::string Opt(const Drive& d, const std::string& key, const std::string& def = "") {
  auto it = d.opts.find(key);
  return it == d.opts.end() ? def : it->second;
}

void Flatten(const nlohmann::ordered_json& obj, const std::string& prefix, std::string& out) {
  for (const auto& [k, v] : obj.items()) {
    std::string key = prefix + k;
    if (v.is_object()) {
      Flatten(v, key + ".", out);
      continue;
    }
    std::string value = v.is_boolean() ? (v.get<bool>() ? "on" : "off") : v.is_string() ? v.get<std::string>() : v.dump();
    if (!out.empty()) out += ",";
    out += key + "=" + EscapeQemuOpt(value);
  }
}

}  // namespace

DriveBinding HostPathBinding(const std::string& path, const std::string& format) {
  struct stat st {};
  bool block = ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
  return {format, {{"driver", block ? "host_device" : "file"}, {"filename", path}}, path};
}

nlohmann::ordered_json DriveBlockdev(const Drive& d, const DriveBinding& bind, const std::string& node_name) {
  std::string cache = Opt(d, "cache", "writeback");
  // Only image formats are QEMU block drivers; ISOs and other files are raw.
  std::string fmt = bind.format == "qcow2" || bind.format == "vmdk" ? bind.format : "raw";
  nlohmann::ordered_json o = {{"driver", fmt}, {"node-name", node_name}, {"file", bind.protocol}};
  if (!bind.backing.is_null()) o["backing"] = bind.backing;
  o["cache"] = {{"direct", cache == "none" || cache == "directsync"}, {"no-flush", cache == "unsafe"}};
  if (d.opts.count("aio")) o["file"]["aio"] = Opt(d, "aio");
  if (Opt(d, "discard") == "on") o["discard"] = "unmap";
  if (Opt(d, "detect_zeroes") == "1") o["detect-zeroes"] = "on";
  if (d.IsCdrom() || Opt(d, "ro") == "1") o["read-only"] = true;
  return o;
}

std::string BlockdevArg(const nlohmann::ordered_json& options) {
  std::string out;
  Flatten(options, "", out);
  return out;
}

}  // namespace hearth
