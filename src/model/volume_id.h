// Volume ids: "<storage>:<volname>". For directory storages the volname encodes the kind
// of content: "100/vm-100-disk-0.qcow2", "iso/x.iso", "snippets/u.yaml",
// linked clones "100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth {

struct VolumeId {
  std::string storage;
  std::string volname;
  std::string ToString() const { return storage + ":" + volname; }
};

bool IsValidStorageId(std::string_view id);
// The VM a volume belongs to by its name ("<vmid>/..." on every storage hearth has, as
// pve-storage's parse_volname gives the owner); 0 for volumes of no VM (ISOs, templates).
int VolumeOwner(const VolumeId& id);
Result<VolumeId> ParseVolumeId(std::string_view text);

enum class ContentType { kImages, kIso, kVztmpl, kBackup, kSnippets, kImport, kRootdir };
const char* ContentTypeName(ContentType c);
std::optional<ContentType> ParseContentType(std::string_view name);

// What a directory-storage volname means.
struct DirVolume {
  ContentType content = ContentType::kImages;
  std::string name;         // file name: "vm-100-disk-0.qcow2", "x.iso"
  int vmid = 0;             // owner for images
  std::string format;       // raw|qcow2|vmdk for images, "iso" for ISOs, ...
  bool is_base = false;     // base-<vmid>-disk-N (a template's disk)
  std::string base_volname; // for linked clones: the base volname ("100/base-100-disk-0.qcow2")
  // Path relative to the storage root: "images/100/vm-100-disk-0.qcow2", "template/iso/x.iso".
  std::string RelativePath() const;
};

// Parses a dir-storage volname. Rejects anything that could escape the storage
// ("..", absolute paths, hidden files, unexpected characters).
Result<DirVolume> ParseDirVolname(std::string_view volname);

// The name an uploaded file is stored under, as pve-storage's normalize_content_filename:
// the part after the last '/' or '\\', every character but [a-zA-Z0-9_.-] replaced by '_'.
std::string NormalizeContentFilename(std::string_view client_name);

// Whether a (normalised) upload name fits its content type, checked before the upload's
// task starts, with pve-storage's texts (API2/Storage/Status.pm upload): ISOs end in
// .iso/.img, container templates in .tar[.gz|.xz|.zst|.bz2], imports are
// [a-zA-Z0-9-.+=_]+.(ova|qcow2|raw|vmdk) ("invalid filename or wrong extension"); and, as
// for every stored file, a safe name (no leading '.', at most 255 bytes). Errors name
// `filename`.
Status CheckUploadFileName(ContentType content, std::string_view name);

// "vm-100-disk-0" style disk name check: returns the vmid and disk index. Also the other
// names Proxmox gives a VM's volumes: "vm-100-cloudinit" and the RAM state of a snapshot,
// "vm-100-state-<snapname>" (qemu-server QemuConfig.pm __snapshot_save_vmstate).
struct DiskName {
  bool base = false;
  int vmid = 0;
  int index = 0;
  bool cloudinit = false;
  std::string state;  // the snapshot name of a state volume, else ""
};
std::optional<DiskName> ParseDiskName(std::string_view file_name_without_ext);

}  // namespace hearth
