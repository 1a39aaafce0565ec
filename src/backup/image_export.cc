#include "backup/image_export.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace hearth {
namespace {

// Running (a zombie no parent has reaped yet counts as gone: it holds no socket).
bool Alive(int pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() || text[paren + 2] != 'Z';
}

std::string Tail(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return LastLine(ss.str());
}

}  // namespace

Result<std::unique_ptr<ImageExport>> ImageExport::Start(ProcessRunner& runner, const std::string& image,
                                                        const std::string& format, const std::string& socket,
                                                        std::chrono::milliseconds timeout, Options options) {
  if (format != "raw" && format != "qcow2" && format != "vmdk")
    return Fail(InvalidArgument("cannot export an image of format '" + format + "'"));
  bool ro = !options.writable;
  // A block device (a zvol, an LV) is QEMU's host_device, a file its file driver.
  struct stat ist {};
  const char* proto = ::stat(image.c_str(), &ist) == 0 && S_ISBLK(ist.st_mode) ? "host_device" : "file";
  nlohmann::json file = {{"driver", proto}, {"node-name", "file0"}, {"filename", image}, {"read-only", ro}};
  nlohmann::json fmt = {{"driver", format}, {"node-name", "disk0"}, {"file", "file0"}, {"read-only", ro}};
  if (options.force_share && ro) file["force-share"] = fmt["force-share"] = true;
  nlohmann::json server = {{"addr", {{"type", "unix"}, {"path", socket}}}};
  nlohmann::json exp = {{"type", "nbd"}, {"id", "export0"}, {"node-name", "disk0"}, {"name", kExportName},
                        {"writable", options.writable}};
  std::string log = socket + ".log";
  std::string pidfile = socket + ".pid";
  ::unlink(log.c_str());
  std::vector<std::string> argv = {"qemu-storage-daemon", "--blockdev", file.dump(), "--blockdev", fmt.dump(),
                                   "--nbd-server", server.dump(), "--export", exp.dump(), "--pidfile", pidfile};
  HEARTH_ASSIGN_OR_RETURN(int pid, runner.SpawnDetached(argv, log));
  std::unique_ptr<ImageExport> ex(new ImageExport(pid, socket, log));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  struct stat st {};
  while (::stat(socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    if (!Alive(pid)) return Fail(Internal("qemu-storage-daemon: " + Tail(log)));
    if (std::chrono::steady_clock::now() >= deadline)
      return Fail(Unavailable("qemu-storage-daemon did not open " + socket + " in time"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ex;
}

int ImageExport::StopStale(const std::string& dir, const std::string& prefix) {
  namespace fs = std::filesystem;
  int stopped = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (!StartsWith(name, prefix) || !EndsWith(name, ".pid")) continue;
    std::string socket = e.path().string().substr(0, e.path().string().size() - 4);
    std::ifstream pf(e.path());
    int pid = 0;
    pf >> pid;
    if (pid > 1) {
      // /proc/<pid>/cmdline: NUL-separated argv; the pid may have been reused since.
      std::ifstream cf("/proc/" + std::to_string(pid) + "/cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(cf)), std::istreambuf_iterator<char>());
      if (cmdline.find("qemu-storage-daemon") != std::string::npos && cmdline.find(socket) != std::string::npos) {
        // Gone before anything reuses its socket path: an exiting daemon removes its socket,
        // which could be a new export's by then.
        ::kill(pid, SIGTERM);
        for (int i = 0; i < 250 && Alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (Alive(pid)) {
          ::kill(pid, SIGKILL);
          for (int i = 0; i < 100 && Alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ++stopped;
      }
    }
    ::unlink(socket.c_str());
    ::unlink(e.path().c_str());
    ::unlink((socket + ".log").c_str());
  }
  return stopped;
}

ImageExport::~ImageExport() {
  if (pid_ > 0 && Alive(pid_)) {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 250 && Alive(pid_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (Alive(pid_)) ::kill(pid_, SIGKILL);
  }
  ::unlink(socket_.c_str());
  ::unlink((socket_ + ".pid").c_str());
  ::unlink(log_.c_str());
}

}  // namespace hearth
