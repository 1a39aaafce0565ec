// qemu-img steps every driver shares: an image's virtual size, and a copy into a file or a
// block device with progress in steps of ten percent (qemu-server's qemu_img_convert).
// argv only, through the ProcessRunner. Thread-safe (no state).
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "storage/plugin.h"
#include "sys/process.h"

namespace hearth {

// QEMU's name for an image format: qcow2 and vmdk are QEMU block drivers, anything else
// (raw, img, iso) is read as raw.
std::string QemuImageFormat(const std::string& format);

// `qemu-img info -U --output=json -f <format> <path>`: the virtual size in bytes.
Result<uint64_t> ImageVirtualSize(ProcessRunner& runner, const std::string& path, const std::string& format);

// `qemu-img convert -p [-n] -U -f <src format> -O <format> [-l snapshot.name=<snap>] <src> <dst>`.
// `existing_target`: write into `dst` as it is (-n: a zvol or LV of the right size) instead
// of creating it. Progress lines: "copied 10%", "copied 20%", ... Errors: "copy disk: qemu-img:
// exit N: <its last stderr line>".
Status ConvertImage(ProcessRunner& runner, const std::string& src_path, const std::string& src_format,
                    const std::string& dst_path, const std::string& format, bool existing_target,
                    const ProgressFn& progress, const std::string& src_snapshot = "");

}  // namespace hearth
