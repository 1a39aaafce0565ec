// The QEMU block node of a drive's volume: a format node ("qcow2", "raw") over a protocol node
// ("file" for image files, "host_device" for block devices such as zvols or LVs). One builder
// serves the command line (-blockdev in key=value form) and QMP's blockdev-add (JSON), so a
// disk added at run time (move_disk's mirror target) gets exactly the options it would get
// at start. Options follow qemu-server's drive options: cache, aio, discard, detect_zeroes, ro.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "model/drive.h"

namespace hearth {

struct DriveBinding {
  std::string path;                 // absolute path of the volume (file or block device)
  std::string format;               // raw, qcow2, vmdk; anything else is opened as raw (ISOs)
  std::string file_driver = "file"; // QEMU protocol driver: file or host_device
};

// The binding of a volume at `path`: protocol driver host_device when the path is a block
// device (a zvol, an LV), file otherwise. Reads the path's type (stat), nothing else.
DriveBinding BindingFor(const std::string& path, const std::string& format);

// The blockdev options in QMP's JSON shape, keys in a stable order (golden files pin them).
nlohmann::ordered_json DriveBlockdev(const Drive& drive, const DriveBinding& binding, const std::string& node_name);

// The same options as one -blockdev argument: nested objects as dotted keys, booleans as
// on/off, every ',' in a value doubled (QEMU's escape).
std::string BlockdevArg(const nlohmann::ordered_json& options);

}  // namespace hearth
