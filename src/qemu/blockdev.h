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
  std::string format;               // raw, qcow2, vmdk; anything else is opened as raw (ISOs)
  nlohmann::ordered_json protocol;  // the protocol node: {"driver": "file", "filename": ...}
  // The host path behind it, for what needs a path (the EFI vars pflash drive, a descriptor
  // passed to a running QEMU); "" for a protocol without one.
  std::string path;
  // The format node's backing, given instead of the one the image header names (null: the
  // header's). A live restore puts a backup's NBD export here (backup/nbd_server.h).
  nlohmann::ordered_json backing;
};

// The binding of a host path that is no storage's volume (an EFI vars copy, a passed-through
// disk): host_device when the path is a block device, file otherwise. Reads the path's type
// (stat). A storage's volumes get theirs from the storage (StoragePlugin::Blockdev).
DriveBinding HostPathBinding(const std::string& path, const std::string& format);

// The blockdev options in QMP's JSON shape, keys in a stable order (golden files pin them).
nlohmann::ordered_json DriveBlockdev(const Drive& drive, const DriveBinding& binding, const std::string& node_name);

// The same options as one -blockdev argument: nested objects as dotted keys, booleans as
// on/off, every ',' in a value doubled (QEMU's escape).
std::string BlockdevArg(const nlohmann::ordered_json& options);

}  // namespace hearth
