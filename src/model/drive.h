// Drive strings (ideN, sataN, scsiN, virtioN, efidisk0, tpmstate0, unusedN):
// "[file=]<volume>[,media=cdrom][,size=32G][,iothread=1]...".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "model/property_string.h"

namespace hearth {

enum class DriveBus { kIde, kSata, kScsi, kVirtio, kEfidisk, kTpmstate, kUnused };

struct DriveKey {
  DriveBus bus;
  int index;
  std::string Name() const;  // "scsi0"
  // nullopt if `key` is not a drive key or its index is out of range (ide0-3, sata0-5,
  // scsi0-30, virtio0-15, efidisk0, tpmstate0, unused0-255).
  static std::optional<DriveKey> Parse(std::string_view key);
  bool IsDisk() const { return bus != DriveBus::kUnused; }
};

const PropertyFormat& DriveFormat(DriveBus bus);

struct Drive {
  std::string file;  // volume id, "none", "cdrom", absolute path or allocation request
  PropertyMap opts;  // every key except file
  bool IsCdrom() const;
  std::optional<uint64_t> SizeBytes() const;
};

Result<Drive> ParseDrive(DriveBus bus, std::string_view text);
std::string PrintDrive(DriveBus bus, const Drive& drive);

// Allocation syntax "<storage>:<GiB>" (decimals allowed) or "<storage>:cloudinit".
struct DriveAllocation {
  std::string storage;  // empty if the caller must supply a default storage
  uint64_t size_bytes = 0;
  bool cloudinit = false;
  bool oversized = false;  // a size no storage can hold (past 2^60 bytes); size_bytes is 0
};
std::optional<DriveAllocation> ParseDriveAllocation(std::string_view file);

}  // namespace hearth
