// QmpEventHub against a fake QEMU event monitor on a real unix socket.
#include "qemu/qmp_events.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "core/testing/temp_dir.h"
#include "qemu/argv.h"

namespace hearth {
namespace {

// Accepts one client, greets it, answers qmp_capabilities, then writes whatever Send() gets.
class FakeMonitor {
 public:
  explicit FakeMonitor(const std::string& path) {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    listen(listen_fd_, 4);
    thread_ = std::thread([this] {
      int c = accept(listen_fd_, nullptr, nullptr);
      Write(c, R"({"QMP": {"version": {}, "capabilities": []}})" "\n");
      std::string buf;
      char tmp[512];
      while (buf.find('\n') == std::string::npos) {
        ssize_t n = read(c, tmp, sizeof tmp);
        if (n <= 0) break;
        buf.append(tmp, n);
      }
      capabilities_ = buf.find("qmp_capabilities") != std::string::npos;
      // An event before the reply: QEMU may send one at any time.
      Write(c, R"({"event": "RESUME", "data": {}, "timestamp": {"seconds": 1, "microseconds": 0}})" "\n");
      Write(c, "{\"return\": {}}\n");
      client_ = c;
      ready_ = true;
    });
  }
  ~FakeMonitor() {
    if (thread_.joinable()) thread_.join();
    CloseClient();
    close(listen_fd_);
  }
  void WaitReady() {
    while (!ready_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Send(const std::string& line) {
    WaitReady();
    Write(client_, line + "\n");
  }
  void CloseClient() {
    if (client_ >= 0) close(client_);
    client_ = -1;
  }
  bool capabilities() const { return capabilities_; }

 private:
  static void Write(int fd, const std::string& s) { ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size())); }
  int listen_fd_ = -1;
  int client_ = -1;
  std::atomic<bool> ready_{false}, capabilities_{false};
  std::thread thread_;
};

std::string Event(const std::string& name, const std::string& job) {
  return R"({"event": ")" + name + R"(", "data": {"device": ")" + job + R"(", "len": 10, "offset": 10, "speed": 0, "type": "mirror"}, "timestamp": {"seconds": 2, "microseconds": 0}})";
}

TEST(QmpEventHub, DeliversTheNamedEventsInOrderToEverySubscriber) {
  TempDir dir;
  FakeMonitor mon(RuntimePathsFor(dir.path(), 100).qmp_event);
  QmpEventHub hub(dir.path());
  auto jobs = hub.Subscribe(100, {"BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED"});
  ASSERT_TRUE(jobs) << jobs.error().message;
  auto all = hub.Subscribe(100, {});  // reuses the connection
  ASSERT_TRUE(all);
  EXPECT_TRUE(mon.capabilities());
  EXPECT_TRUE(hub.Connected(100));
  mon.Send(Event("BLOCK_JOB_READY", "mirror-scsi0"));
  mon.Send(R"({"event": "SHUTDOWN", "data": {"guest": true}})");
  mon.Send("not json at all");
  mon.Send(Event("BLOCK_JOB_COMPLETED", "mirror-scsi0"));

  auto a = (*jobs)->Next(std::chrono::seconds(10));
  ASSERT_TRUE(a && *a);
  EXPECT_EQ((**a)["event"], "BLOCK_JOB_READY");
  auto b = (*jobs)->Next(std::chrono::seconds(10));
  ASSERT_TRUE(b && *b);
  EXPECT_EQ((**b)["event"], "BLOCK_JOB_COMPLETED");  // SHUTDOWN was not asked for
  std::vector<std::string> seen;
  while (seen.size() < 3) {
    auto e = (*all)->Next(std::chrono::seconds(10));
    ASSERT_TRUE(e && *e);
    seen.push_back((**e)["event"]);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"BLOCK_JOB_READY", "SHUTDOWN", "BLOCK_JOB_COMPLETED"}));
  // Nothing more: a timeout, not an error.
  auto none = (*jobs)->Next(std::chrono::milliseconds(20));
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

TEST(QmpEventHub, SubscriptionsEndWhenQemuClosesTheMonitor) {
  TempDir dir;
  FakeMonitor mon(RuntimePathsFor(dir.path(), 7).qmp_event);
  QmpEventHub hub(dir.path());
  auto sub = hub.Subscribe(7, {"SHUTDOWN"});
  ASSERT_TRUE(sub);
  mon.Send(R"({"event": "SHUTDOWN", "data": {}})");
  mon.CloseClient();
  auto first = (*sub)->Next(std::chrono::seconds(10));  // queued events come first
  ASSERT_TRUE(first && *first);
  auto end = (*sub)->Next(std::chrono::seconds(10));
  ASSERT_FALSE(end);
  EXPECT_NE(end.error().message.find("QEMU closed its event monitor"), std::string::npos) << end.error().message;
  EXPECT_FALSE(hub.Connected(7));
}

TEST(QmpEventHub, ForgetEndsTheReaderAndItsSubscriptions) {
  TempDir dir;
  FakeMonitor mon(RuntimePathsFor(dir.path(), 8).qmp_event);
  QmpEventHub hub(dir.path());
  auto sub = hub.Subscribe(8, {});
  ASSERT_TRUE(sub);
  hub.Forget(8);
  EXPECT_FALSE(hub.Connected(8));
  auto end = (*sub)->Next(std::chrono::seconds(10));
  EXPECT_FALSE(end);
}

TEST(QmpEventHub, AVmWithoutAnEventMonitorIsAClearError) {
  TempDir dir;
  QmpEventHub hub(dir.path());
  auto sub = hub.Subscribe(9, {}, std::chrono::milliseconds(200));
  ASSERT_FALSE(sub);
  EXPECT_NE(sub.error().message.find("restart it"), std::string::npos) << sub.error().message;
}

TEST(QmpEventHub, DroppedSubscriptionsGetNothingAndCostNothing) {
  TempDir dir;
  FakeMonitor mon(RuntimePathsFor(dir.path(), 10).qmp_event);
  QmpEventHub hub(dir.path());
  auto keep = hub.Subscribe(10, {"X"});
  ASSERT_TRUE(keep);
  { auto gone = hub.Subscribe(10, {"X"}); }
  for (int i = 0; i < 100; ++i) mon.Send(R"({"event": "X"})");
  for (int i = 0; i < 100; ++i) {
    auto e = (*keep)->Next(std::chrono::seconds(10));
    ASSERT_TRUE(e && *e) << i;
  }
}

}  // namespace
}  // namespace hearth
