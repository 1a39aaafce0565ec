// QemuSupervisor::MirrorDrive: the online half of move_disk. Every wait is on an event from
// the VM's event monitor; query-block-jobs is read only to print progress.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/units.h"
#include "qemu/qmp_client.h"
#include "qemu/replies.h"
#include "qemu/supervisor.h"

namespace hearth {

namespace {

using Clock = std::chrono::steady_clock;

std::string Percent(uint64_t offset, uint64_t len) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", len ? 100.0 * static_cast<double>(offset) / static_cast<double>(len) : 100.0);
  return buf;
}

}  // namespace

Status QemuSupervisor::AddBlockdevByFd(int vmid, const nlohmann::ordered_json& options) {
  nlohmann::json add(options);
  if (!add.contains("file") || !add["file"].is_object()) return Fail(Internal("blockdev options without a file node"));
  // A protocol without a local file (a network protocol) is opened by QEMU itself.
  if (!add["file"].contains("filename")) {
    HEARTH_TRY(Execute(vmid, "blockdev-add", add, std::chrono::seconds(60)));
    return Ok();
  }
  std::string path = add["file"]["filename"].get<std::string>();
  bool direct = add.contains("cache") && add["cache"].value("direct", false);
  bool read_only = add.value("read-only", false);
  int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) return Fail(Internal("could not open '" + path + "': " + std::strerror(errno)));
  // The fdset and the node are made on one connection, so nothing can close the set between.
  auto c = QmpClient::Connect(Paths(vmid).qmp, std::chrono::seconds(10));
  if (!c) {
    ::close(fd);
    return Fail(c.error());
  }
  auto added = c->ExecuteWithFd("add-fd", {{"opaque", "hearth " + add.value("node-name", std::string())}}, fd);
  ::close(fd);  // QEMU holds its own copy now
  if (!added) return Fail(added.error());
  if (!added->is_object() || !(*added)["fdset-id"].is_number_integer())
    return Fail(Internal("add-fd: QEMU's reply has no fdset-id"));
  int64_t fdset = (*added)["fdset-id"].get<int64_t>();
  add["file"]["filename"] = "/dev/fdset/" + std::to_string(fdset);
  auto made = c->Execute("blockdev-add", add, std::chrono::seconds(60));
  // The node keeps a duplicate of the descriptor; the set itself is no longer needed.
  (void)c->Execute("remove-fd", {{"fdset-id", fdset}});
  if (!made) return Fail(made.error());
  return Ok();
}

Status QemuSupervisor::MirrorDrive(int vmid, const std::string& drive_key, const nlohmann::ordered_json& target,
                                   const std::function<void(const std::string&)>& log,
                                   std::chrono::milliseconds stall_timeout) {
  const std::string job = "mirror-" + drive_key;
  const std::string target_node = target.value("node-name", "");
  HEARTH_ASSIGN_OR_RETURN(std::string source_node, BlockNodeName(vmid, drive_key));
  HEARTH_ASSIGN_OR_RETURN(auto events, SubscribeEvents(vmid, {"BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED",
                                                              "BLOCK_JOB_CANCELLED", "BLOCK_JOB_ERROR"}));
  // Waits for the job's end (COMPLETED or CANCELLED); "" when it completed without error.
  auto await_end = [&](std::chrono::milliseconds timeout) -> Result<std::string> {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      HEARTH_ASSIGN_OR_RETURN(auto ev, events->Next(std::chrono::milliseconds(500)));
      if (!ev) continue;
      BlockJobEvent e = ReadBlockJobEvent(*ev);
      std::string name = QmpEventName(*ev);
      if (e.job != job) continue;
      if (name == "BLOCK_JOB_COMPLETED") return e.error;
      if (name == "BLOCK_JOB_CANCELLED") return std::string("cancelled");
    }
    return Fail(Unavailable(job + ": the job did not end within " +
                            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s"));
  };

  // A job of ours left by an interrupted move (the daemon was killed) would refuse the id.
  if (auto jobs = Execute(vmid, "query-block-jobs"); jobs && FindBlockJob(*jobs, job)) {
    log(job + ": cancelling a mirror job left by an interrupted move");
    HEARTH_TRY(Execute(vmid, "block-job-cancel", {{"device", job}, {"force", true}}));
    (void)await_end(std::chrono::seconds(60));
  }

  HEARTH_TRY(AddBlockdevByFd(vmid, target).map_error([](Error e) { return e.WithContext("unable to open the target volume"); }));
  auto remove_target = [&] { (void)Execute(vmid, "blockdev-del", {{"node-name", target_node}}, std::chrono::seconds(60)); };
  auto started = Execute(vmid, "blockdev-mirror",
                         {{"job-id", job}, {"device", source_node}, {"target", target_node}, {"sync", "full"}});
  if (!started) {
    remove_target();
    return Fail(started.error().WithContext("mirroring " + drive_key + " failed"));
  }
  auto fail = [&](const std::string& why) -> Status {
    (void)Execute(vmid, "block-job-cancel", {{"device", job}, {"force", true}});
    (void)await_end(std::chrono::seconds(60));
    remove_target();
    return Fail(Internal(job + ": mirroring has been cancelled: " + why));
  };

  auto begin = Clock::now();
  auto last_log = begin;
  uint64_t last_offset = 0;
  auto last_progress = begin;
  bool completing = false;
  while (true) {
    auto ev = events->Next(std::chrono::seconds(1));
    if (!ev) return fail(ev.error().message);  // QEMU exited
    auto now = Clock::now();
    if (*ev) {
      BlockJobEvent e = ReadBlockJobEvent(**ev);
      std::string name = QmpEventName(**ev);
      if (e.job != job) continue;
      if (name == "BLOCK_JOB_ERROR") {
        log(job + ": " + e.error + " on the " + (e.error.rfind("read", 0) == 0 ? "source" : "target"));
        continue;  // the COMPLETED event with the error follows (on-*-error=report)
      }
      if (name == "BLOCK_JOB_CANCELLED") {
        remove_target();
        return Fail(Internal(job + ": mirroring has been cancelled"));
      }
      if (name == "BLOCK_JOB_READY" && !completing) {
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - begin).count();
        log(job + ": transferred " + HumanBytes(e.len) + " of " + HumanBytes(e.len) + " (100.00%) in " +
            std::to_string(secs) + "s, ready");
        log(job + ": Completing block job...");
        // Pivot: from here the guest's writes go to the target only.
        if (auto st = Execute(vmid, "job-complete", {{"id", job}}); !st) return fail(st.error().message);
        completing = true;
        continue;
      }
      if (name == "BLOCK_JOB_COMPLETED") {
        if (!e.error.empty()) {
          remove_target();
          return Fail(Internal(job + ": mirroring failed: " + e.error));
        }
        if (!completing) {
          remove_target();
          return Fail(Internal(job + ": the job ended before it was switched over"));
        }
        log(job + ": Completed successfully.");
        break;
      }
      continue;
    }
    // No event this second: print progress, watch for a stall.
    if (completing) continue;
    auto jobs = Execute(vmid, "query-block-jobs");
    if (!jobs) return fail(jobs.error().message);
    auto p = FindBlockJob(*jobs, job);
    if (!p) continue;  // its end event is on its way
    if (p->offset != last_offset) {
      last_offset = p->offset;
      last_progress = now;
    } else if (now - last_progress > stall_timeout) {
      return fail("no progress for " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(stall_timeout).count()) + " s");
    }
    if (now - last_log >= std::chrono::seconds(1)) {
      last_log = now;
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - begin).count();
      log(job + ": transferred " + HumanBytes(p->offset) + " of " + HumanBytes(p->len) + " (" +
          Percent(p->offset, p->len) + ") in " + std::to_string(secs) + "s");
    }
  }
  // The source node has no user left; closing it releases the old volume.
  if (auto st = Execute(vmid, "blockdev-del", {{"node-name", source_node}}, std::chrono::seconds(60)); !st)
    log(job + ": could not close the old volume: " + st.error().message);
  log(job + ": mirror-job finished");
  return Ok();
}

}  // namespace hearth
