#include "sys/clock.h"

#include <ctime>

namespace hearth {

int64_t SystemClock::UnixSeconds() const { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace hearth
