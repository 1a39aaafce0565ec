#include "sys/host_stats.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "sys/posix/proc_host_stats.h"

namespace hearth {
namespace {

TEST(ParseProcStat, CountsFieldsAfterTheLastParenthesis) {
  // A command name may hold spaces and ") " (QEMU's -name sets the thread name).
  std::string line =
      "4242 (qemu) S (evil) R 1 4242 4242 0 -1 4194560 5120 0 0 0 700 300 0 0 20 0 5 0 123456 1052672 2560 "
      "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
  auto s = ParseProcStat(line, 4096);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, 'R');
  EXPECT_EQ(s->cpu_ticks, 1000u);
  EXPECT_EQ(s->start_ticks, 123456u);
  EXPECT_EQ(s->rss_bytes, 2560u * 4096);
}

TEST(ParseProcStat, RefusesWhatIsNotAStatLine) {
  EXPECT_FALSE(ParseProcStat("", 4096));
  EXPECT_FALSE(ParseProcStat("1 (x)", 4096));
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 2 3", 4096));
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b 0 0 20 0 1 0 9 9 9", 4096));
}

TEST(ProcHostStats, ReadsThisProcessAndTheHost) {
  ProcHostStats host;
  auto self = host.Process(getpid());
  ASSERT_TRUE(self);
  EXPECT_EQ(self->state, 'R');
  EXPECT_GT(self->rss_bytes, 0u);
  EXPECT_GT(host.UptimeSeconds(), 0);
  EXPECT_GT(host.OnlineCpus(), 0);
  EXPECT_GT(host.Memory().total, host.Memory().available);
  EXPECT_GT(host.ClockTicksPerSecond(), 0);
  EXPECT_NE(host.KernelVersion().find("Linux"), std::string::npos);
  auto cmd = host.CommandLine(getpid());
  ASSERT_TRUE(cmd);
  EXPECT_NE(cmd->find("sys_tests"), std::string::npos);
  EXPECT_FALSE(host.Process(0x3fffffff));  // no such pid
}

}  // namespace
}  // namespace hearth
