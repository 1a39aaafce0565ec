// QgaClient against a fake agent on a real unix socket.
#include "qemu/qga_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include "core/testing/temp_dir.h"

namespace hearth {
namespace {

// Serves one client: answers the sync (after some stale junk) and then `replies` in order.
class FakeAgent {
 public:
  FakeAgent(const std::string& path, std::vector<std::string> replies, bool answer_sync = true) {
    fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 1);
    thread_ = std::thread([this, replies, answer_sync] {
      int c = accept(fd_, nullptr, nullptr);
      std::string buf;
      char tmp[4096];
      auto read_line = [&]() {
        while (buf.find('\n') == std::string::npos) {
          ssize_t n = read(c, tmp, sizeof tmp);
          if (n <= 0) return std::string();
          buf.append(tmp, n);
        }
        std::string line = buf.substr(0, buf.find('\n'));
        buf.erase(0, line.size() + 1);
        return line;
      };
      std::string sync = read_line();
      received.push_back(sync);
      if (answer_sync) {
        auto j = nlohmann::json::parse(sync.substr(sync.find('{')));
        std::string out = "{\"return\": 12345}\n\xFF{\"return\": " + j["arguments"]["id"].dump() + "}\n";
        (void)!write(c, out.data(), out.size());
        for (const auto& r : replies) {
          received.push_back(read_line());
          std::string line = r + "\n";
          (void)!write(c, line.data(), line.size());
        }
      }
      read_line();  // until the client closes
      close(c);
    });
  }
  ~FakeAgent() {
    thread_.join();
    close(fd_);
  }
  std::vector<std::string> received;

 private:
  int fd_;
  std::thread thread_;
};

TEST(QgaClient, HandshakeSkipsStaleRepliesAndRunsCommands) {
  TempDir dir;
  std::string path = dir.Sub("qga");
  FakeAgent agent(path, {R"({"return": {}})", R"({"return": {"host-name": "node1"}})",
                         R"({"error": {"class": "GenericError", "desc": "no such file"}})"});
  {
    auto c = QgaClient::Connect(path, std::chrono::seconds(5));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(*c->Execute("guest-ping"), nlohmann::json::object());
    EXPECT_EQ((*c->Execute("guest-get-host-name"))["host-name"], "node1");
    auto err = c->Execute("guest-file-open", {{"path", "/x"}});
    ASSERT_FALSE(err);
    EXPECT_NE(err.error().message.find("no such file"), std::string::npos);
  }
  ASSERT_GE(agent.received.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(agent.received[0][0]), 0xFF);  // the delimiter byte first
  EXPECT_NE(agent.received[0].find("guest-sync-delimited"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(agent.received[1])["execute"], "guest-ping");
}

TEST(QgaClient, SilentChannelMeansTheAgentIsNotRunning) {
  TempDir dir;
  std::string path = dir.Sub("qga");
  FakeAgent agent(path, {}, /*answer_sync=*/false);
  auto c = QgaClient::Connect(path, std::chrono::milliseconds(300));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "QEMU guest agent is not running");
}

TEST(QgaClient, NoSocketMeansTheAgentIsNotRunning) {
  auto c = QgaClient::Connect("/nonexistent/qga.sock", std::chrono::milliseconds(100));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "QEMU guest agent is not running");
}

}  // namespace
}  // namespace hearth
