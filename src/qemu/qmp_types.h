// Typed results of the QMP commands hearth uses (no JSON outside src/qemu).
#pragma once

#include <cstdint>

namespace hearth {

// query-blockstats: bytes read and written, summed over all block devices.
struct BlockIoTotals {
  uint64_t rd_bytes = 0, wr_bytes = 0;
};

}  // namespace hearth
