#include "sys/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hearth {
namespace {

struct Target {
  std::string name;
  long hit_number = 1;
  std::atomic<long> hits{0};
  bool armed = false;
};

Target& Armed() {
  static Target* t = [] {
    auto* target = new Target();  // lives as long as the process
    const char* env = std::getenv("HEARTH_TEST_CRASH_AT");
    if (env && *env) {
      std::string spec = env;
      size_t at = spec.find('@');
      target->name = spec.substr(0, at);
      if (at != std::string::npos) target->hit_number = std::max(1L, std::atol(spec.c_str() + at + 1));
      target->armed = true;
    }
    return target;
  }();
  return *t;
}

}  // namespace

void CrashPoint(const char* name) {
  Target& t = Armed();
  if (!t.armed || t.name != name) return;
  if (t.hits.fetch_add(1) + 1 != t.hit_number) return;
  static const char kMsg[] = "hearth: HEARTH_TEST_CRASH_AT reached, killing myself\n";
  (void)!write(2, kMsg, sizeof kMsg - 1);
  kill(getpid(), SIGKILL);
  _exit(137);  // not reached
}

}  // namespace hearth
