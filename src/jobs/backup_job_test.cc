#include "jobs/backup_job.h"

#include <gtest/gtest.h>

#include "core/testing/temp_dir.h"
#include "jobs/backup_scheduler.h"
#include "state/sqlite/sqlite_store.h"
#include "sys/testing/fake_clock.h"

namespace hearth {
namespace {

std::string Outcome(const Result<BackupJob>& j) {
  if (j) return "ok";
  const Error& e = j.error();
  return e.fields.empty() ? e.message : e.fields.begin()->first + ": " + e.fields.begin()->second;
}

TEST(BackupJob, FieldsAndTheApiShape) {
  auto j = MakeBackupJob({{"id", "nightly"}, {"schedule", "02:30"}, {"vmid", "100,101"}, {"storage", "local"},
                          {"mode", "snapshot"}, {"prune-backups", "keep-last=3,keep-daily=7"}, {"protected", "0"},
                          {"comment", "every night"}, {"bwlimit", "1000"}});
  ASSERT_TRUE(j) << Outcome(j);
  nlohmann::json api = j->ToApiJson();
  EXPECT_EQ(api["id"], "nightly");
  EXPECT_EQ(api["type"], "vzdump");
  EXPECT_EQ(api["schedule"], "02:30");
  EXPECT_EQ(api["enabled"], 1);
  EXPECT_EQ(api["vmid"], "100,101");
  EXPECT_EQ(api["protected"], 0);   // booleans as numbers
  EXPECT_EQ(api["bwlimit"], 1000);  // integers as numbers
  EXPECT_EQ(api["prune-backups"], (nlohmann::json{{"keep-last", 3}, {"keep-daily", 7}}));
  EXPECT_EQ(api["comment"], "every night");
  EXPECT_FALSE(api.contains("repeat-missed"));

  auto back = BackupJob::FromStoredJson(j->ToStoredJson());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->ToApiJson(), api);
}

TEST(BackupJob, StartTimeAndDowBecomeASchedule) {
  auto j = MakeBackupJob({{"starttime", "02:30"}, {"dow", "mon,fri"}, {"all", "1"}});
  ASSERT_TRUE(j) << Outcome(j);
  EXPECT_EQ(j->schedule, "mon,fri 02:30");
  j = MakeBackupJob({{"starttime", "02:30"}, {"dow", "mon,tue,wed,thu,fri,sat,sun"}, {"all", "1"}});
  ASSERT_TRUE(j);
  EXPECT_EQ(j->schedule, "02:30");
  EXPECT_FALSE(j->options.count("starttime"));
  EXPECT_EQ(Outcome(MakeBackupJob({{"starttime", "02:30"}, {"schedule", "daily"}, {"all", "1"}})),
            "starttime: 'starttime' and 'schedule' cannot both be set");
  EXPECT_EQ(Outcome(MakeBackupJob({{"all", "1"}})), "schedule: neither 'starttime' nor 'schedule' were set");
  EXPECT_EQ(Outcome(MakeBackupJob({{"starttime", "2:30"}, {"dow", "mon,xyz"}, {"all", "1"}})),
            "dow: invalid format - invalid day 'xyz'");
}

TEST(BackupJob, ProxmoxErrors) {
  EXPECT_EQ(Outcome(MakeBackupJob({{"schedule", "daily"}})), "vmid: property is missing");
  EXPECT_EQ(Outcome(MakeBackupJob({{"schedule", "daily"}, {"all", "1"}, {"vmid", "100"}})),
            "all: option conflicts with option 'vmid'");
  EXPECT_EQ(Outcome(MakeBackupJob({{"schedule", "daily"}, {"exclude", "100"}, {"vmid", "101"}})),
            "exclude: option conflicts with option 'vmid'");
  EXPECT_EQ(Outcome(MakeBackupJob({{"schedule", "daily"}, {"vmid", "100,99"}})),
            "vmid: invalid format - value '99' does not look like a valid VM ID");
  EXPECT_EQ(Outcome(MakeBackupJob({{"schedule", "daily"}, {"vmid", "100"}, {"prune-backups", "keep-last=x"}})).substr(0, 37),
            "prune-backups: invalid format - keep-");
  EXPECT_EQ(Outcome(MakeBackupJob({{"id", "9lives"}, {"schedule", "daily"}, {"all", "1"}})),
            "id: invalid format - invalid configuration ID '9lives'");
  EXPECT_EQ(Outcome(MakeBackupJob({{"schedule", "not a time"}, {"all", "1"}})).substr(0, 58),
            "schedule: invalid format - invalid calendar event 'not a t");
  EXPECT_EQ(Outcome(MakeBackupJob({{"schedule", "daily"}, {"all", "1"}, {"mode", "live"}})).substr(0, 28),
            "mode: value 'live' does not ");
  // An exclude list means all guests but those.
  auto j = MakeBackupJob({{"schedule", "daily"}, {"exclude", "100"}});
  ASSERT_TRUE(j);
  EXPECT_EQ(j->options.at("all"), "1");
}

TEST(BackupJob, UpdateClearsTheOtherSelections) {
  auto j = MakeBackupJob({{"id", "n1"}, {"schedule", "daily"}, {"all", "1"}, {"exclude", "105"}, {"comment", "c"}});
  ASSERT_TRUE(j);
  auto u = UpdateBackupJob(*j, {{"vmid", "100"}}, {});
  ASSERT_TRUE(u) << Outcome(u);
  EXPECT_FALSE(u->options.count("all"));
  EXPECT_FALSE(u->options.count("exclude"));
  EXPECT_EQ(u->options.at("vmid"), "100");
  u = UpdateBackupJob(*u, {{"all", "1"}}, {"comment"});
  ASSERT_TRUE(u) << Outcome(u);
  EXPECT_FALSE(u->options.count("vmid"));
  EXPECT_EQ(u->comment, "");
  EXPECT_EQ(Outcome(UpdateBackupJob(*u, {}, {"schedule"})), "delete: unknown option 'schedule'");
  EXPECT_EQ(Outcome(UpdateBackupJob(*u, {}, {})), "no options specified");
  EXPECT_EQ(Outcome(UpdateBackupJob(*u, {}, {"all"})), "vmid: property is missing");
}

TEST(IncludedGuests, VmidListOrAllButExcluded) {
  std::vector<int> existing = {100, 101, 102};
  EXPECT_EQ(IncludedGuests({{"vmid", "102;100 100"}}, existing), (std::vector<int>{100, 102}));
  EXPECT_EQ(IncludedGuests({{"vmid", "999"}}, existing), (std::vector<int>{999}));  // kept; the backup logs it
  EXPECT_EQ(IncludedGuests({{"all", "1"}, {"exclude", "101"}}, existing), (std::vector<int>{100, 102}));
  EXPECT_EQ(IncludedGuests({{"all", "0"}}, existing), (std::vector<int>{}));
  auto req = MakeVzdumpRequest({{"vmid", "100"}, {"storage", "backups"}, {"remove", "0"}}, {100}, "keep-last=2");
  ASSERT_TRUE(req);
  EXPECT_EQ(req->storage, "backups");
  EXPECT_FALSE(req->remove);
  ASSERT_TRUE(req->prune);
  EXPECT_EQ(req->prune->Print(), "keep-last=2");  // the storage's retention when the job has none
  EXPECT_EQ(req->command_line, "vzdump 100 --remove 0 --storage backups");
}

class BackupSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = SqliteStore::Open(dir_.Sub("state.db"));
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }
  std::unique_ptr<BackupScheduler> Make() {
    return std::make_unique<BackupScheduler>(
        *store_, clock_, "node1",
        [this](const BackupJob& j) -> Result<std::string> {
          runs_.push_back(j.id);
          return "UPID:node1:0:0:0:vzdump::root@pam:";
        },
        [this](const std::string&) { return still_running_; });
  }
  BackupJob Job(std::map<std::string, std::string> f) {
    auto j = MakeBackupJob(f);
    EXPECT_TRUE(j) << Outcome(j);
    return *j;
  }

  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  FakeClock clock_{1700000000};  // 2023-11-14 22:13:20 UTC
  std::vector<std::string> runs_;
  bool still_running_ = false;
};

TEST_F(BackupSchedulerTest, RunsEachEventOnceAndSurvivesARestart) {
  auto sched = Make();
  ASSERT_TRUE(sched->Load());
  ASSERT_TRUE(sched->Create(Job({{"id", "nightly"}, {"schedule", "02:00 UTC"}, {"all", "1"}})));
  ASSERT_TRUE(sched->Create(Job({{"id", "off"}, {"schedule", "02:00 UTC"}, {"all", "1"}, {"enabled", "0"}})));
  ASSERT_TRUE(sched->Create(Job({{"id", "elsewhere"}, {"schedule", "02:00 UTC"}, {"all", "1"}, {"node", "node2"}})));
  EXPECT_EQ(sched->Create(Job({{"id", "nightly"}, {"schedule", "daily"}, {"all", "1"}})).error().message,
            "Job 'nightly' already exists");
  EXPECT_EQ(sched->RunDue(), 1700013600);  // 2023-11-15 02:00 UTC
  EXPECT_TRUE(runs_.empty());
  clock_.Advance(1700013600 - 1700000000);
  EXPECT_EQ(sched->RunDue(), 1700013600 + 86400);
  EXPECT_EQ(runs_, (std::vector<std::string>{"nightly"}));  // not the disabled one, not node2's
  sched->RunDue();
  EXPECT_EQ(runs_.size(), 1u);  // once per event
  EXPECT_EQ(sched->Get("nightly")->last_upid, "UPID:node1:0:0:0:vzdump::root@pam:");

  // Down for three days: the missed runs are skipped at the next start (repeat-missed=0)...
  sched.reset();
  clock_.Advance(3 * 86400);
  sched = Make();
  ASSERT_TRUE(sched->Load());
  EXPECT_EQ(sched->List().size(), 3u);
  sched->RunDue();
  EXPECT_EQ(runs_.size(), 1u);
  // ...and caught up once with repeat-missed=1.
  ASSERT_TRUE(sched->Update("nightly", {{"repeat-missed", "1"}}, {}));
  sched.reset();
  clock_.Advance(2 * 86400);
  sched = Make();
  ASSERT_TRUE(sched->Load());
  sched->RunDue();
  sched->RunDue();
  EXPECT_EQ(runs_, (std::vector<std::string>{"nightly", "nightly"}));

  EXPECT_EQ(sched->Update("nope", {{"all", "1"}}, {}).error().message, "no such vzdump job");
  ASSERT_TRUE(sched->Delete("off"));
  EXPECT_EQ(sched->Delete("off").error().fields.at("id"), "No such job 'off'");
  EXPECT_EQ(sched->RunNow("elsewhere").error().message, "backup job 'elsewhere' runs on node 'node2', not on 'node1'");

  // A run still going: the next event is skipped, and the job runs once the run ended.
  still_running_ = true;
  clock_.Advance(86400);
  sched->RunDue();
  EXPECT_EQ(runs_.size(), 2u);
  EXPECT_EQ(sched->RunNow("nightly").error().message.substr(0, 40), "backup job 'nightly' is still running (U");
  still_running_ = false;
  sched->RunDue();
  EXPECT_EQ(runs_.size(), 3u);
}

TEST_F(BackupSchedulerTest, APurgedVmLeavesEveryJob) {
  auto sched = Make();
  ASSERT_TRUE(sched->Create(Job({{"id", "two"}, {"schedule", "daily"}, {"vmid", "100,101"}})));
  ASSERT_TRUE(sched->Create(Job({{"id", "one"}, {"schedule", "daily"}, {"vmid", "101"}})));
  ASSERT_TRUE(sched->Create(Job({{"id", "rest"}, {"schedule", "daily"}, {"exclude", "101,102"}})));
  ASSERT_TRUE(sched->RemoveVmid(101));
  EXPECT_EQ(sched->Get("two")->options.at("vmid"), "100");
  EXPECT_FALSE(sched->Get("one"));  // its last guest
  EXPECT_EQ(sched->Get("rest")->options.at("exclude"), "102");
  sched.reset();
  sched = Make();
  ASSERT_TRUE(sched->Load());
  EXPECT_EQ(sched->List().size(), 2u);
}

}  // namespace
}  // namespace hearth
