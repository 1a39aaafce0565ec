// Formats of the VM config keys that describe devices and firmware details (cpu, rng0,
// audio0, watchdog, numaN, virtiofsN, bootdisk, startdate, vmstatestorage): what Proxmox's
// schema accepts for each, with its error texts. Split from vm_schema.cc, which holds the key
// table; validation runs in CanonicalVmValue.
//
// Sources: qemu-server QemuServer.pm ($audio_fmt, pve-qm-watchdog, startdate, bootdisk),
// QemuServer/CPUConfig.pm (pve-vm-cpu-conf and validate_vm_cpu_conf), RNG.pm, Memory.pm
// (pve-qm-numanode), Virtiofs.pm, Drive.pm (verify_bootdisk); pve-common JSONSchema.pm
// (pve-storage-id, pve-configid). Thread-safe: pure functions over static tables.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "model/property_string.h"

namespace hearth {

const PropertyFormat& CpuFormat();
const PropertyFormat& RngFormat();

// Each returns the value to store (as sent: PVE keeps these verbatim) or an error message
// without the "invalid format - " prefix that CanonicalVmValue adds.
Result<std::string> CanonCpu(std::string_view v);
Result<std::string> CanonRng(std::string_view v);
Result<std::string> CanonAudio(std::string_view v);
Result<std::string> CanonWatchdog(std::string_view v);
Result<std::string> CanonNuma(std::string_view v);
Result<std::string> CanonVirtiofs(std::string_view v);
Result<std::string> CanonBootdisk(std::string_view v);
Result<std::string> CanonStorageId(std::string_view v);

// Proxmox `pattern`s (anchored): a mismatch reads "value does not match the regex pattern".
bool MatchesBootdiskPattern(std::string_view v);    // (ide|sata|scsi|virtio)\d+
bool MatchesStartdatePattern(std::string_view v);   // now | YYYY-MM-DD[THH:MM:SS]

// CPU models a VM may name: QEMU's x86 models (7.2) and PVE's x86-64-v2..v4 abstractions.
bool IsKnownCpuModel(std::string_view model);

}  // namespace hearth
