#include "sys/posix/posix_process.h"

#include <gtest/gtest.h>

namespace hearth {

TEST(PosixProcess, CapturesOutputAndExitCode) {
  PosixProcessRunner r;
  auto res = r.Run({"sh", "-c", "echo out; echo err >&2; exit 3"}, {});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->exit_code, 3);
  EXPECT_EQ(res->out, "out\n");
  EXPECT_EQ(res->err, "err\n");
}

TEST(PosixProcess, ArgumentsAreNotInterpretedByAShell) {
  PosixProcessRunner r;
  auto res = r.Run({"echo", "$(id)", ";", "rm -rf /"}, {});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->out, "$(id) ; rm -rf /\n");
}

TEST(PosixProcess, FeedsStdin) {
  PosixProcessRunner r;
  ProcessOptions o;
  o.stdin_data = "hello";
  auto res = r.Run({"cat"}, o);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->out, "hello");
}

TEST(PosixProcess, TimeoutKillsTheChild) {
  PosixProcessRunner r;
  ProcessOptions o;
  o.timeout = std::chrono::milliseconds(200);
  auto res = r.Run({"sleep", "30"}, o);
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->timed_out);
}

TEST(PosixProcess, MissingProgramIsAnError) {
  PosixProcessRunner r;
  auto res = r.Run({"/nonexistent/prog"}, {});
  ASSERT_FALSE(res);
  EXPECT_NE(res.error().message.find("cannot run"), std::string::npos);
}

TEST(PosixProcess, StreamsStderrLines) {
  PosixProcessRunner r;
  ProcessOptions o;
  std::vector<std::string> lines;
  o.on_stderr_line = [&](const std::string& l) { lines.push_back(l); };
  ASSERT_TRUE(r.Run({"sh", "-c", "echo a >&2; echo b >&2"}, o));
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "b"}));
}

}  // namespace hearth
