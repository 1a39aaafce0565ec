#include "sys/posix/posix_process.h"

#include <gtest/gtest.h>

namespace hearth {

TEST(PosixProcess, CapturesOutputAndExitCode) {
  PosixProcessRunner r;
  auto res = r.Run({"ls", "-d", "/", "/nonexistent-hearth-test"}, {});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->exit_code, 2);
  EXPECT_EQ(res->out, "/\n");
  EXPECT_NE(res->err.find("nonexistent-hearth-test"), std::string::npos);
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
  ASSERT_TRUE(r.Run({"ls", "/nonexistent-hearth-a", "/nonexistent-hearth-b"}, o));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("nonexistent-hearth-a"), std::string::npos);
  EXPECT_NE(lines[1].find("nonexistent-hearth-b"), std::string::npos);
}

}  // namespace hearth
