// UnixLineSocket::Connect against a listener that is busy: QEMU's monitor accepts one client
// at a time with a backlog of 1, so a third client finds the backlog full.
#include "sys/unix_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "core/testing/temp_dir.h"

namespace hearth {
namespace {

int Listen(const std::string& path, int backlog) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd, backlog), 0);
  return fd;
}

TEST(UnixLineSocket, AFullBacklogIsWaitedForNotTakenForAConnection) {
  TempDir dir;
  std::string path = dir.Sub("mon.sock");
  int lfd = Listen(path, 0);
  // Fill the backlog with clients nobody accepts.
  std::vector<UnixLineSocket> queued;
  while (true) {
    auto c = UnixLineSocket::Connect(path, std::chrono::milliseconds(50));
    if (!c) break;
    queued.push_back(std::move(*c));
    ASSERT_LT(queued.size(), 16u) << "the backlog never filled";
  }
  // Full: a connect times out (it used to "succeed" with an unconnected socket whose first
  // read failed with EINVAL).
  auto full = UnixLineSocket::Connect(path, std::chrono::milliseconds(100));
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message.find("backlog is full"), std::string::npos) << full.error().message;
  // Once the listener takes its queued clients, a waiting connect gets through and talks.
  std::thread server([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (size_t i = 0; i <= queued.size(); ++i) {
      int c = ::accept(lfd, nullptr, nullptr);
      if (i == queued.size()) (void)!::write(c, "hello\n", 6);
      ::close(c);
    }
  });
  auto waited = UnixLineSocket::Connect(path, std::chrono::seconds(10));
  ASSERT_TRUE(waited) << waited.error().message;
  auto line = waited->ReadLine(std::chrono::seconds(10));
  server.join();
  ASSERT_TRUE(line) << line.error().message;
  EXPECT_EQ(*line, "hello");
  ::close(lfd);
}

}  // namespace
}  // namespace hearth
