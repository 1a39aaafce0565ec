#include "sys/posix/posix_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

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

TEST(PosixProcess, StreamsFromAndToFilesOfAnySize) {
  // Beyond max_output: a file descriptor is not a captured pipe.
  std::string in_path = "/tmp/hearth-process-in-" + std::to_string(getpid());
  std::string out_path = "/tmp/hearth-process-out-" + std::to_string(getpid());
  std::string data(3 << 20, 'x');
  for (size_t i = 0; i < data.size(); i += 4096) data[i] = static_cast<char>('a' + (i / 4096) % 26);
  {
    FILE* f = fopen(in_path.c_str(), "wb");
    ASSERT_TRUE(f);
    fwrite(data.data(), 1, data.size(), f);
    fclose(f);
  }
  int in = open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  PosixProcessRunner r;
  ProcessOptions o;
  o.stdin_fd = in;
  o.stdout_fd = out;
  o.max_output = 1024;
  auto res = r.Run({"cat"}, o);
  close(in);
  close(out);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->exit_code, 0);
  EXPECT_EQ(res->out, "");
  std::string copied;
  {
    FILE* f = fopen(out_path.c_str(), "rb");
    ASSERT_TRUE(f);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) copied.append(buf, n);
    fclose(f);
  }
  EXPECT_TRUE(copied == data) << copied.size();
  unlink(in_path.c_str());
  unlink(out_path.c_str());
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
