// The live-restore NBD server: a real client (libnbd) reads back exactly what was backed up,
// a corrupt chunk is an EIO that names the chunk, and only the allowed peer is served; the
// session's protocol checks against a scripted stream.
#include <gtest/gtest.h>
#include <libnbd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "backup/image_backup.h"
#include "backup/nbd_image.h"
#include "backup/nbd_server.h"
#include "core/testing/temp_dir.h"
#include "sys/posix/posix_file_system.h"

namespace hearth {
namespace {

int ConnectAbstract(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct Client {
  nbd_handle* h = nbd_create();
  ~Client() { nbd_close(h); }
  bool Connect(const std::string& socket, const std::string& name) {
    int fd = ConnectAbstract(socket);
    if (fd < 0) return false;
    nbd_set_export_name(h, name.c_str());
    return nbd_connect_socket(h, fd) == 0;
  }
  std::string Read(uint64_t off, size_t len, int* err) {
    std::string buf(len, '\0');
    *err = nbd_pread(h, buf.data(), len, off, 0) == 0 ? 0 : nbd_get_errno();
    return buf;
  }
};

class NbdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 10 MiB + 12 KiB: two full chunks (random, then zeros) and a short random one.
    image_.assign(10 * 1024 * 1024 + 12288, '\0');
    std::mt19937_64 rng(7);
    for (size_t i = 0; i < 4 * 1024 * 1024; ++i) image_[i] = static_cast<char>(rng());
    for (size_t i = 8 * 1024 * 1024; i < image_.size(); ++i) image_[i] = static_cast<char>(rng());
    auto idx = BackupImage(*store_, image_.size(),
                           [&](uint64_t off, size_t len) -> Result<std::string> { return image_.substr(off, len); },
                           "drive-scsi0", nullptr, nullptr);
    ASSERT_TRUE(idx) << idx.error().message;
    index_ = *idx;
    name_ = LiveRestoreSocketName(dir_.path(), 100 + ::getpid() % 1000);
  }
  std::unique_ptr<NbdServer> Serve(std::set<uid_t> uids = {::geteuid()}) {
    NbdExportTable t;
    t["drive-scsi0"] = std::make_shared<BackupImageExport>(store_, index_, std::make_shared<ChunkCache>(4), "drive-scsi0");
    NbdServer::Options o;
    o.abstract_name = name_;
    o.uids = std::move(uids);
    auto s = NbdServer::Start(std::move(t), o, [this](const std::string& l) {
      std::lock_guard lock(log_mu_);
      log_ += l + "\n";
    });
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  TempDir dir_;
  PosixFileSystem fs_;
  std::shared_ptr<ChunkStore> store_ = std::make_shared<ChunkStore>(fs_, dir_.Sub("store"));
  std::string image_;
  FixedIndex index_;
  std::string name_;
  std::mutex log_mu_;
  std::string log_;
};

TEST_F(NbdServerTest, ALibnbdClientReadsTheBackedUpImageAtAnyAlignment) {
  auto server = Serve();
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(name_, "drive-scsi0")) << nbd_get_error();
  EXPECT_EQ(nbd_get_size(c.h), static_cast<int64_t>(image_.size()));
  EXPECT_EQ(nbd_is_read_only(c.h), 1);
  EXPECT_EQ(nbd_can_multi_conn(c.h), 1);
  int err = 0;
  EXPECT_TRUE(c.Read(0, image_.size(), &err) == image_);  // across every chunk boundary
  EXPECT_EQ(err, 0);
  // Unaligned pieces: inside a chunk, across the random/zero boundary, the short tail.
  for (auto [off, len] : std::vector<std::pair<uint64_t, size_t>>{{1, 511}, {4194300, 9000}, {8388607, 12289}, {10485759, 1}}) {
    EXPECT_TRUE(c.Read(off, len, &err) == image_.substr(off, len)) << off;
    EXPECT_EQ(err, 0);
  }
  // Past the end: an error for that request, and the connection goes on.
  c.Read(image_.size() - 4, 8, &err);
  EXPECT_NE(err, 0);
  EXPECT_TRUE(c.Read(0, 4096, &err) == image_.substr(0, 4096));
  nbd_shutdown(c.h, 0);
}

TEST_F(NbdServerTest, AnUnknownExportIsRefused) {
  auto server = Serve();
  Client c;
  EXPECT_FALSE(c.Connect(name_, "drive-scsi1"));
}

TEST_F(NbdServerTest, ACorruptChunkIsAnEioThatNamesIt) {
  std::string path = store_->ChunkPath(index_.digests[0]);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x5a');
  }
  auto server = Serve();
  Client c;
  ASSERT_TRUE(c.Connect(name_, "drive-scsi0"));
  int err = 0;
  c.Read(4096, 4096, &err);
  EXPECT_EQ(err, EIO);
  EXPECT_TRUE(c.Read(8 * 1024 * 1024, 4096, &err) == image_.substr(8 * 1024 * 1024, 4096));  // other chunks still read
  std::lock_guard lock(log_mu_);
  EXPECT_NE(log_.find(DigestHex(index_.digests[0])), std::string::npos) << log_;
  EXPECT_NE(log_.find("drive-scsi0"), std::string::npos) << log_;
}

TEST_F(NbdServerTest, OnlyTheRestoredVmsProcessIsServedOnceItIsKnown) {
  auto server = Serve({::geteuid() + 1});  // not us
  Client refused;
  EXPECT_FALSE(refused.Connect(name_, "drive-scsi0"));
  server = nullptr;
  server = Serve();
  Client before;
  ASSERT_TRUE(before.Connect(name_, "drive-scsi0"));
  // A child of ours is another process of the same uid: once the peer is known, it is refused
  // and the connection made before the restriction by anyone else is dropped.
  server->RestrictToPeer(::getpid() + 100000);
  int err = 0;
  before.Read(0, 4096, &err);
  EXPECT_NE(err, 0);
  server->RestrictToPeer(::getpid());
  Client after;
  ASSERT_TRUE(after.Connect(name_, "drive-scsi0"));
  EXPECT_TRUE(after.Read(0, 4096, &err) == image_.substr(0, 4096));
  pid_t child = ::fork();
  if (child == 0) {
    Client other;
    _exit(other.Connect(name_, "drive-scsi0") ? 1 : 0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "another process was served";
}

TEST_F(NbdServerTest, TheNameIsTakenWhileAServerRuns) {
  auto server = Serve();
  NbdServer::Options o;
  o.abstract_name = name_;
  auto second = NbdServer::Start({}, o, nullptr);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos);
  server = nullptr;
  EXPECT_TRUE(NbdServer::Start({}, o, nullptr));  // free again once the first is gone
}

// The session alone, on scripted bytes.
class ScriptStream : public NbdStream {
 public:
  explicit ScriptStream(std::string in) : in_(std::move(in)) {}
  Status ReadExact(void* buf, size_t len) override {
    if (in_.size() - pos_ < len) return Fail(Unavailable("end of script"));
    std::memcpy(buf, in_.data() + pos_, len);
    pos_ += len;
    return Ok();
  }
  Status WriteAll(const void* buf, size_t len) override {
    out.append(static_cast<const char*>(buf), len);
    return Ok();
  }
  std::string out;

 private:
  std::string in_;
  size_t pos_ = 0;
};

std::string Be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}
std::string Option(uint32_t opt, const std::string& data) {
  return Be(0x49484156454F5054, 8) + Be(opt, 4) + Be(data.size(), 4) + data;
}
std::string Go(const std::string& name) { return Option(7, Be(name.size(), 4) + name + Be(0, 2)); }
std::string Request(uint16_t type, uint64_t off, uint32_t len) {
  return Be(0x25609513, 4) + Be(0, 2) + Be(type, 2) + Be(42, 8) + Be(off, 8) + Be(len, 4);
}

class ZeroExport : public NbdExport {
 public:
  uint64_t size() const override { return 1 << 20; }
  Status Read(uint64_t, uint32_t len, std::string* out) override {
    out->append(len, '\0');
    return Ok();
  }
};

Status RunScript(const std::string& script, std::string* out = nullptr) {
  NbdExportTable t{{"d", std::make_shared<ZeroExport>()}};
  ScriptStream s(script);
  Status st = ServeNbdSession(s, t, nullptr);
  if (out) *out = s.out;
  return st;
}

TEST(NbdSessionTest, ProtocolViolationsEndTheSession) {
  std::string hello = Be(3, 4);  // FIXED_NEWSTYLE | NO_ZEROES
  EXPECT_TRUE(RunScript(hello + Go("d") + Request(2, 0, 0)));  // DISC: a proper goodbye
  auto bad_flags = RunScript(Be(0x80, 4));
  ASSERT_FALSE(bad_flags);
  EXPECT_NE(bad_flags.error().message.find("unknown flags"), std::string::npos);
  auto huge = RunScript(hello + Be(0x49484156454F5054, 8) + Be(7, 4) + Be(1 << 30, 4));
  ASSERT_FALSE(huge);  // refused before anything is read or allocated
  EXPECT_NE(huge.error().message.find("1073741824 bytes"), std::string::npos);
  auto magic = RunScript(hello + Go("d") + Be(0x12345678, 4) + std::string(24, '\0'));
  ASSERT_FALSE(magic);
  EXPECT_NE(magic.error().message.find("bad request magic"), std::string::npos);
  auto write = RunScript(hello + Go("d") + Request(1, 0, 512) + std::string(512, 'x'));
  ASSERT_FALSE(write);
  EXPECT_NE(write.error().message.find("read-only"), std::string::npos);
  std::string many;
  for (int i = 0; i < 100; ++i) many += Option(8, "");  // STRUCTURED_REPLY, refused each time
  EXPECT_FALSE(RunScript(hello + many));
}

TEST(NbdSessionTest, ReadsOutOfRangeOrTooLargeAreEinvalAndTheSessionGoesOn) {
  std::string out;
  std::string script = Be(3, 4) + Go("d") + Request(0, (1 << 20) - 4, 8) + Request(0, ~uint64_t{0} - 1, 4) +
                       Request(0, 0, 64u << 20) + Request(0, 0, 16) + Request(2, 0, 0);
  ASSERT_TRUE(RunScript(script, &out));
  // The replies follow the negotiation: three EINVALs (22) without data, then 16 zero bytes.
  std::string tail = Be(0x67446698, 4) + Be(22, 4) + Be(42, 8);
  std::string ok = Be(0x67446698, 4) + Be(0, 4) + Be(42, 8) + std::string(16, '\0');
  EXPECT_EQ(out.substr(out.size() - 3 * 16 - 32), tail + tail + tail + ok);
}

// NbdImage (the backup side's client) against a server whose socket exists a moment before
// it listens, as qemu-storage-daemon's between bind() and listen(): refused, then waited for.
class FdStream : public NbdStream {
 public:
  explicit FdStream(int fd) : fd_(fd) {}
  Status ReadExact(void* buf, size_t len) override {
    for (auto* p = static_cast<char*>(buf); len;) {
      ssize_t n = ::recv(fd_, p, len, 0);
      if (n <= 0) return Fail(Unavailable("closed"));
      p += n;
      len -= static_cast<size_t>(n);
    }
    return Ok();
  }
  Status WriteAll(const void* buf, size_t len) override {
    return ::send(fd_, buf, len, MSG_NOSIGNAL) == static_cast<ssize_t>(len) ? Ok() : Fail(Unavailable("write"));
  }

 private:
  int fd_;
};

TEST(NbdImageTest, ASocketThatIsNotListeningYetIsWaitedFor) {
  TempDir dir;
  std::string path = dir.Sub("export.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::thread server([fd] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::listen(fd, 1);
    int c = ::accept(fd, nullptr, nullptr);
    FdStream io(c);
    NbdExportTable t{{"x", std::make_shared<ZeroExport>()}};
    (void)ServeNbdSession(io, t, nullptr);
    ::close(c);
  });
  auto img = NbdImage::ConnectUnix(path, "x", std::chrono::seconds(10));
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ((*img)->size(), 1u << 20);
  auto data = (*img)->Read(4096, 16);
  ASSERT_TRUE(data) << data.error().message;
  EXPECT_EQ(*data, std::string(16, '\0'));
  img->reset();
  server.join();
  ::close(fd);
}

}  // namespace
}  // namespace hearth
