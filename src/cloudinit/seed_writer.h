// Writes a NoCloud seed as an ISO 9660 image labelled "cidata" (what cloud-init's NoCloud
// datasource looks for) into the VM's cloud-init volume.
#pragma once

#include <string>

#include "core/result.h"
#include "model/cloudinit.h"
#include "sys/file_system.h"
#include "sys/process.h"

namespace hearth {

// Builds the ISO with xorriso in `tmp_dir` and converts it to `dest_format` at `dest_path`
// (replaced atomically: a failure leaves the old seed in place).
Status WriteNoCloudSeed(ProcessRunner& runner, FileSystem& fs, const NoCloudSeed& seed, const std::string& dest_path,
                        const std::string& dest_format, const std::string& tmp_dir);

}  // namespace hearth
