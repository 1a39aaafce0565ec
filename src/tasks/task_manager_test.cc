#include "tasks/task_manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/testing/temp_dir.h"
#include "state/sqlite/sqlite_store.h"
#include "sys/posix/posix_file_system.h"
#include "sys/testing/fake_clock.h"
#include "sys/testing/fault_file_system.h"

namespace hearth {
namespace {

class TaskManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*SqliteStore::Open(dir_.Sub("db")));
    tasks_ = std::make_unique<TaskManager>(*store_, fs_, clock_, "node1", dir_.Sub("tasks"), 42);
  }
  void TearDown() override {
    tasks_.reset();
    store_.reset();
  }
  FakeClock clock_;
  TempDir dir_;
  PosixFileSystem posix_;
  FaultFileSystem fs_{posix_};  // passes everything through unless a test plans a fault
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TaskManager> tasks_;
};

TEST_F(TaskManagerTest, TaskIsVisibleImmediatelyAndEndsOk) {
  std::atomic<bool> release{false};
  auto upid = tasks_->Start({"qmstart", "100", "root@pam", 100}, [&](TaskContext& ctx) {
    ctx.Log("starting");
    while (!release) std::this_thread::yield();
    return Ok();
  });
  ASSERT_TRUE(upid);
  auto info = tasks_->Get(*upid);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->running);
  EXPECT_EQ(info->upid.node, "node1");
  EXPECT_EQ(info->upid.pstart, 42u);
  release = true;
  tasks_->WaitIdle();
  info = tasks_->Get(*upid);
  EXPECT_FALSE(info->running);
  EXPECT_EQ(info->record.exitstatus, "OK");
  auto log = tasks_->ReadLog(*upid, 0, 0);
  EXPECT_EQ(log->first, (std::vector<std::string>{"starting", "TASK OK"}));
}

TEST_F(TaskManagerTest, ErrorsAndWarningsBecomeExitStatus) {
  auto bad = tasks_->Start({"qmstart", "1", "u@pve"}, [](TaskContext&) { return Status(Fail(Internal("boom\nline2"))); });
  auto warn = tasks_->Start({"qmstart", "2", "u@pve"}, [](TaskContext& ctx) {
    ctx.Warn("careful");
    return Ok();
  });
  auto field = tasks_->Start({"qmstart", "3", "u@pve"}, [](TaskContext&) { return Status(Fail(FieldError("net0", "bridge missing"))); });
  tasks_->WaitIdle();
  EXPECT_EQ(tasks_->Get(*bad)->record.exitstatus, "boom line2");
  EXPECT_EQ(tasks_->Get(*field)->record.exitstatus, "net0: bridge missing");
  EXPECT_EQ(tasks_->Get(*warn)->record.exitstatus, "WARNINGS: 1");
  EXPECT_EQ(tasks_->ReadLog(*bad, 0, 0)->first.back(), "TASK ERROR: boom line2");
}

TEST_F(TaskManagerTest, SameVmSerialisesDifferentVmsOverlap) {
  std::atomic<int> inside{0}, max_inside{0};
  auto body = [&](TaskContext&) {
    int now = ++inside;
    int prev = max_inside;
    while (now > prev && !max_inside.compare_exchange_weak(prev, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    --inside;
    return Ok();
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(tasks_->Start({"qmconfig", "100", "u@pve", 100}, body));
  tasks_->WaitIdle();
  EXPECT_EQ(max_inside, 1);  // one VM: never two at once

  max_inside = 0;
  std::atomic<int> arrived{0};
  auto meet = [&](TaskContext&) {
    ++arrived;
    // Both tasks must be inside at the same time for either to finish.
    while (arrived < 2) std::this_thread::yield();
    return Ok();
  };
  ASSERT_TRUE(tasks_->Start({"qmconfig", "101", "u@pve", 101}, meet));
  ASSERT_TRUE(tasks_->Start({"qmconfig", "102", "u@pve", 102}, meet));
  tasks_->WaitIdle();
  EXPECT_EQ(arrived, 2);
}

TEST_F(TaskManagerTest, TwoQuickStartsNeverShareOneIdleThread) {
  // A stop right after a long import must not wait for the import: with one parked pool
  // thread, two Starts in a row need two threads.
  for (int round = 0; round < 10; ++round) {
    tasks_.reset();  // a fresh pool with exactly one thread
    tasks_ = std::make_unique<TaskManager>(*store_, fs_, clock_, "node1", dir_.Sub("tasks"), 42);
    ASSERT_TRUE(tasks_->Start({"qmconfig", "100", "u@pve", 100}, [](TaskContext&) { return Ok(); }));
    tasks_->WaitIdle();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the pool thread park (not needed to pass)
    std::atomic<int> arrived{0};
    auto meet = [&](TaskContext&) -> Status {
      ++arrived;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (arrived < 2)
        if (std::chrono::steady_clock::now() > deadline) return Fail(Internal("the other task never started"));
        else std::this_thread::yield();
      return Ok();
    };
    auto a = tasks_->Start({"qmconfig", "101", "u@pve", 101}, meet);
    auto b = tasks_->Start({"qmstop", "102", "u@pve", 102}, meet);
    ASSERT_TRUE(a && b);
    tasks_->WaitIdle();
    ASSERT_EQ(tasks_->Get(*a)->record.exitstatus, "OK") << "round " << round;
    ASSERT_EQ(tasks_->Get(*b)->record.exitstatus, "OK") << "round " << round;
  }
}

TEST_F(TaskManagerTest, UnfinishedTasksEndAsUnexpectedStatusAfterRestart) {
  ASSERT_TRUE(store_->InsertTask({"UPID:node1:00000009:0000002A:6553F100:qmstart:100:root@pam:", "node1", "qmstart",
                                  "100", "root@pam", 1700000000, 0, "", 100}));
  ASSERT_TRUE(tasks_->RecoverUnfinished());
  auto info = tasks_->Get("UPID:node1:00000009:0000002A:6553F100:qmstart:100:root@pam:");
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->running);
  EXPECT_EQ(info->record.exitstatus, "unexpected status");
}

TEST_F(TaskManagerTest, PruneKeepsRecentAndNewestTasks) {
  std::vector<std::string> upids;
  for (int i = 0; i < 5; ++i) {
    upids.push_back(*tasks_->Start({"qmstart", std::to_string(i), "u@pve"}, [](TaskContext&) { return Ok(); }));
    tasks_->WaitIdle();
    clock_.Advance(86400);  // one task a day
  }
  // Older than 2 days and not among the newest 2: the first three go, logs included.
  auto gone = tasks_->Prune(2 * 86400, 2);
  ASSERT_TRUE(gone);
  EXPECT_EQ(*gone, 3u);
  EXPECT_FALSE(tasks_->Get(upids[0]));
  EXPECT_FALSE(tasks_->ReadLog(upids[2], 0, 0));
  EXPECT_TRUE(tasks_->Get(upids[3]));
  EXPECT_EQ(tasks_->ReadLog(upids[4], 0, 0)->first.back(), "TASK OK");
}

// A task with runaway output cannot fill the disk: the log stops at its bound, says so,
// and still ends with the task's result.
TEST_F(TaskManagerTest, RunawayOutputIsBoundedAndTheResultStillLogged) {
  tasks_->set_max_log_bytes(64 << 10);
  auto upid = tasks_->Start({"qmimport", "100", "root@pam", 100}, [&](TaskContext& ctx) {
    for (int i = 0; i < 100000; ++i) ctx.Log("progress line " + std::to_string(i));
    ctx.Log(std::string(1 << 20, 'x'));  // one enormous line
    return Fail(Internal("it failed at the end"));
  });
  ASSERT_TRUE(upid);
  tasks_->WaitIdle();
  auto log = tasks_->ReadLog(*upid, 0, 0);
  ASSERT_TRUE(log);
  const auto& lines = log->first;
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines.back(), "TASK ERROR: it failed at the end");
  EXPECT_EQ(lines[lines.size() - 2], "task log truncated: it reached 64 KiB; further output is dropped");
  EXPECT_EQ(lines[0], "progress line 0");
  size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size() + 1;
  EXPECT_LT(bytes, (64u << 10) + 200);
  EXPECT_EQ(tasks_->Get(*upid)->record.exitstatus, "it failed at the end");
}

TEST_F(TaskManagerTest, LongLinesAreCut) {
  auto upid = tasks_->Start({"qmimport", "100", "root@pam", 100}, [&](TaskContext& ctx) {
    ctx.Log(std::string(100000, 'y'));
    return Ok();
  });
  tasks_->WaitIdle();
  auto log = tasks_->ReadLog(*upid, 0, 0);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->first[0].size(), kMaxTaskLogLine);
  EXPECT_EQ(log->first.back(), "TASK OK");
}

TEST_F(TaskManagerTest, UnknownTaskIsAFieldError) {
  auto r = tasks_->Get("UPID:node1:00000009:0000002A:6553F100:qmstart:100:root@pam:");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fields.at("upid"), "no such task");
}

TEST_F(TaskManagerTest, AFullDiskLosesLogLinesButNotTheTaskOrItsStatus) {
  // ENOSPC on every log write after the first: the work still runs, its result is recorded
  // in the task list, and the log keeps what was written before the disk filled up.
  fs_.FailNext(FaultFileSystem::Op::kAppend, ENOSPC, /*skip=*/1, /*count=*/1000);
  auto upid = tasks_->Start({"qmconfig", "100", "u@pve", 100}, [](TaskContext& ctx) -> Status {
    ctx.Log("first line");
    ctx.Log("second line");
    return Fail(Internal("it failed"));
  });
  ASSERT_TRUE(upid);
  tasks_->WaitIdle();
  auto rec = tasks_->Get(*upid);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->record.exitstatus, "it failed");
  auto log = tasks_->ReadLog(*upid, 0, 0);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->first, std::vector<std::string>{"first line"});
}

TEST_F(TaskManagerTest, ALogThatCannotBeCreatedRefusesTheTaskWithTheReason) {
  fs_.FailNext(FaultFileSystem::Op::kOpen, EIO);
  bool ran = false;
  auto upid = tasks_->Start({"qmconfig", "100", "u@pve", 100}, [&](TaskContext&) {
    ran = true;
    return Ok();
  });
  ASSERT_FALSE(upid);
  EXPECT_NE(upid.error().message.find("Input/output error"), std::string::npos) << upid.error().message;
  tasks_->WaitIdle();
  EXPECT_FALSE(ran);
}

TEST_F(TaskManagerTest, AShortWriteLeavesWholeLinesForTheNextReader) {
  // A line cut short by a full disk is the log's last line; the lines before it read back
  // intact and a reader never fails on it.
  auto upid = tasks_->Start({"qmconfig", "100", "u@pve", 100}, [&](TaskContext& ctx) -> Status {
    ctx.Log("complete");
    fs_.ShortWriteNext(4);
    ctx.Log("cut short here");
    return Ok();
  });
  ASSERT_TRUE(upid);
  tasks_->WaitIdle();
  auto log = tasks_->ReadLog(*upid, 0, 0);
  ASSERT_TRUE(log);
  ASSERT_EQ(log->first.size(), 3u);
  EXPECT_EQ(log->first[0], "complete");
  EXPECT_EQ(log->first[1], "cut ");
  EXPECT_EQ(log->first[2], "TASK OK");
  EXPECT_EQ(tasks_->Get(*upid)->record.exitstatus, "OK");
}

}  // namespace
}  // namespace hearth
