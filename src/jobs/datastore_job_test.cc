#include "jobs/datastore_job.h"

#include <gtest/gtest.h>

#include "core/testing/temp_dir.h"
#include "jobs/datastore_job_scheduler.h"
#include "model/upid.h"
#include "state/sqlite/sqlite_store.h"
#include "sys/testing/fake_clock.h"
#include "vms/vm_service.h"

namespace hearth {
namespace {

std::string Outcome(const Result<DatastoreJob>& j) {
  if (j) return "ok";
  const Error& e = j.error();
  return e.fields.empty() ? e.message : e.fields.begin()->first + ": " + e.fields.begin()->second;
}

TEST(DatastoreJob, FieldsAndTheApiShape) {
  auto j = MakeDatastoreJob({{"id", "offsite"}, {"type", "sync"}, {"storage", "backups"}, {"schedule", "sat 03:00"},
                             {"target", "usb"}, {"prune-backups", "keep-daily=7,keep-last=2"}, {"vmid", "100"},
                             {"comment", "to the USB disk"}});
  ASSERT_TRUE(j) << Outcome(j);
  nlohmann::json api = j->ToApiJson();
  EXPECT_EQ(api["type"], "sync");
  EXPECT_EQ(api["target"], "usb");
  EXPECT_EQ(api["vmid"], 100);
  EXPECT_EQ(api["enabled"], 1);
  EXPECT_EQ(api["prune-backups"], (nlohmann::json{{"keep-last", 2}, {"keep-daily", 7}}));
  EXPECT_FALSE(api.contains("ignore-verified"));  // a verify job's field

  auto v = MakeDatastoreJob({{"id", "weekly-verify"}, {"type", "verify"}, {"storage", "backups"}, {"schedule", "sun"},
                             {"outdated-after", "30"}});
  ASSERT_TRUE(v) << Outcome(v);
  EXPECT_TRUE(v->ignore_verified);  // PBS's default for verify jobs
  EXPECT_EQ(v->ToApiJson()["outdated-after"], 30);
  EXPECT_EQ(v->ToApiJson()["ignore-verified"], 1);

  // Round trip through the store's form, state included.
  v->last_run = 1700000000;
  v->last_upid = "UPID:n:1:2:3:verify:backups:root@pam:";
  auto back = DatastoreJob::FromStoredJson(v->ToStoredJson());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->ToApiJson(), v->ToApiJson());
  EXPECT_EQ(back->last_run, 1700000000);
  EXPECT_EQ(back->last_upid, v->last_upid);
}

TEST(DatastoreJob, BadFieldsNameTheField) {
  auto make = [](std::map<std::string, std::string> f) { return Outcome(MakeDatastoreJob(f)); };
  std::map<std::string, std::string> gc = {{"id", "gc"}, {"type", "gc"}, {"storage", "backups"}, {"schedule", "daily"}};
  EXPECT_EQ(make(gc), "ok");
  auto with = [&](std::string k, std::string v) {
    auto f = gc;
    f[k] = v;
    return make(f);
  };
  auto without = [&](std::string k) {
    auto f = gc;
    f.erase(k);
    return make(f);
  };
  EXPECT_EQ(without("storage"), "storage: property is missing and it is not optional");
  EXPECT_EQ(without("schedule"), "schedule: property is missing and it is not optional");
  EXPECT_EQ(with("type", "backup"), "type: value 'backup' does not have a value in the enumeration 'verify, gc, sync, prune, drill'");
  EXPECT_EQ(with("id", "1x"), "id: invalid format - invalid configuration ID '1x'");
  EXPECT_EQ(with("schedule", "tomorrow").substr(0, 48), "schedule: invalid format - invalid calendar even");
  EXPECT_EQ(with("storage", "a/b"), "storage: invalid format - storage ID 'a/b' contains illegal characters");
  EXPECT_EQ(with("target", "usb"), "target: property is not allowed for type 'gc'");
  EXPECT_EQ(with("vmid", "100"), "vmid: property is not allowed for type 'gc'");
  EXPECT_EQ(with("bogus", "1"), "bogus: property is not defined in schema and the schema does not allow additional properties");
  EXPECT_EQ(with("enabled", "maybe"), "enabled: type check ('boolean') failed - got 'maybe'");
  EXPECT_EQ(with("comment", "two\nlines"), "comment: value must be one line of UTF-8 text");
  EXPECT_EQ(with("node", "-x"), "node: invalid format - value does not look like a valid node name");
  EXPECT_EQ(make({{"id", "sy"}, {"type", "sync"}, {"storage", "aa"}, {"schedule", "daily"}}),
            "target: property is missing and it is not optional");
  EXPECT_EQ(make({{"id", "sy"}, {"type", "sync"}, {"storage", "aa"}, {"schedule", "daily"}, {"target", "aa"}}),
            "target: the target must be another storage than 'storage'");
  EXPECT_EQ(make({{"id", "pr"}, {"type", "prune"}, {"storage", "aa"}, {"schedule", "daily"}}),
            "prune-backups: property is missing and it is not optional");
  EXPECT_EQ(make({{"id", "pr"}, {"type", "prune"}, {"storage", "aa"}, {"schedule", "daily"}, {"prune-backups", "keep-last=x"}})
                .substr(0, 30),
            "prune-backups: invalid format ");
  EXPECT_EQ(make({{"id", "ve"}, {"type", "verify"}, {"storage", "aa"}, {"schedule", "daily"}, {"outdated-after", "-1"}}),
            "outdated-after: value must have a minimum value of 0");
  EXPECT_EQ(make({{"id", "ve"}, {"type", "verify"}, {"storage", "aa"}, {"schedule", "daily"}, {"vmid", "99"}}),
            "vmid: value must have a minimum value of 100");
}

TEST(DatastoreJob, SyncFromARemote) {
  std::map<std::string, std::string> f = {{"id", "from-a"}, {"type", "sync"}, {"storage", "offsite"}, {"schedule", "daily"},
                                          {"remote", "nodea"}, {"remote-store", "local"}};
  auto j = MakeDatastoreJob(f);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(j->remote, "nodea");
  EXPECT_EQ(j->remote_store, "local");
  EXPECT_EQ(j->ToApiJson()["remote-store"], "local");
  auto back = DatastoreJob::FromStoredJson(j->ToStoredJson());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->remote, "nodea");
  auto with = [&](std::map<std::string, std::string> changes, std::vector<std::string> drop = {}) {
    auto g = f;
    for (auto& [k, v] : changes) g[k] = v;
    for (auto& k : drop) g.erase(k);
    return Outcome(MakeDatastoreJob(g));
  };
  EXPECT_EQ(with({}, {"remote-store"}), "remote-store: property is missing and it is not optional");
  EXPECT_EQ(with({{"target", "usb"}}), "target: property is not allowed with 'remote'");
  EXPECT_EQ(with({}, {"remote"}), "remote-store: property is only allowed with 'remote'");
  EXPECT_EQ(with({{"remote", "a b"}}), "remote: invalid format - value does not look like a valid node name");
  EXPECT_EQ(with({{"remote-store", "x/y"}}).substr(0, 36), "remote-store: invalid format - stora");
  // A pull may keep the target's own retention, as a copy to a storage does.
  EXPECT_EQ(with({{"prune-backups", "keep-last=3"}}), "ok");
  // Switching a pull to a copy: the remote fields go, the target comes.
  EXPECT_EQ(Outcome(UpdateDatastoreJob(*j, {{"target", "usb"}}, {"remote", "remote-store"})), "ok");
}

TEST(DatastoreJob, DrillFields) {
  std::map<std::string, std::string> drill = {
      {"id", "drill"}, {"type", "drill"}, {"storage", "aa"}, {"schedule", "sun 04:00"}, {"vmid", "100"}};
  auto j = MakeDatastoreJob(drill);
  ASSERT_TRUE(j) << Outcome(j);
  nlohmann::json api = j->ToApiJson();
  EXPECT_EQ(api["vmid"], 100);
  EXPECT_EQ(api["timeout"], 900);  // the default is shown
  EXPECT_FALSE(api.contains("marker"));
  EXPECT_FALSE(api.contains("scratch-vmid"));
  auto with = [&](std::string k, std::string v) {
    auto f = drill;
    f[k] = v;
    return Outcome(MakeDatastoreJob(f));
  };
  EXPECT_EQ(with("marker", "login:"), "ok");
  EXPECT_EQ(with("marker", "a\nb"), "marker: value must be 1 to 128 printable ASCII characters, not only spaces");
  EXPECT_EQ(with("marker", "   "), "marker: value must be 1 to 128 printable ASCII characters, not only spaces");
  EXPECT_EQ(with("marker", std::string(129, 'x')), "marker: value must be 1 to 128 printable ASCII characters, not only spaces");
  EXPECT_EQ(with("scratch-vmid", "100"), "scratch-vmid: the scratch VM must be another VM than 'vmid'");
  EXPECT_EQ(with("timeout", "5"), "timeout: value must have a minimum value of 10");
  EXPECT_EQ(with("target", "bb"), "target: property is not allowed for type 'drill'");
  auto f = drill;
  f.erase("vmid");
  EXPECT_EQ(Outcome(MakeDatastoreJob(f)), "vmid: property is missing and it is not optional");
  EXPECT_EQ(Outcome(MakeDatastoreJob({{"id", "ve"}, {"type", "verify"}, {"storage", "aa"}, {"schedule", "daily"},
                                      {"marker", "x"}})),
            "marker: property is not allowed for type 'verify'");

  // Round trip and update: deleting the timeout brings the default back; the vmid stays required.
  auto set = MakeDatastoreJob([&] {
    auto g = drill;
    g["timeout"] = "60";
    g["marker"] = "READY";
    g["scratch-vmid"] = "9000";
    return g;
  }());
  ASSERT_TRUE(set) << Outcome(set);
  auto back = DatastoreJob::FromStoredJson(set->ToStoredJson());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ToApiJson(), set->ToApiJson());
  EXPECT_EQ(back->scratch_vmid, 9000);
  auto u = UpdateDatastoreJob(*set, {}, {"timeout", "marker"});
  ASSERT_TRUE(u) << Outcome(u);
  EXPECT_EQ(u->timeout, 900);
  EXPECT_EQ(u->marker, "");
  EXPECT_EQ(Outcome(UpdateDatastoreJob(*set, {}, {"vmid"})), "vmid: property is missing and it is not optional");
}

TEST(DatastoreJob, UpdateKeepsTypeAndId) {
  auto j = MakeDatastoreJob({{"id", "ve"}, {"type", "verify"}, {"storage", "aa"}, {"schedule", "daily"}, {"vmid", "100"}});
  ASSERT_TRUE(j);
  auto u = UpdateDatastoreJob(*j, {{"schedule", "weekly"}, {"outdated-after", "7"}}, {"vmid"});
  ASSERT_TRUE(u) << Outcome(u);
  EXPECT_EQ(u->schedule, "weekly");
  EXPECT_EQ(u->vmid, 0);
  EXPECT_EQ(u->outdated_after, 7);
  EXPECT_EQ(Outcome(UpdateDatastoreJob(*j, {{"type", "gc"}}, {})), "type: the type of a job cannot change");
  EXPECT_EQ(Outcome(UpdateDatastoreJob(*j, {}, {"storage"})), "delete: cannot delete required option 'storage'");
  EXPECT_EQ(Outcome(UpdateDatastoreJob(*j, {}, {"nope"})), "delete: unknown option 'nope'");
  EXPECT_EQ(Outcome(UpdateDatastoreJob(*j, {{"target", "bb"}}, {})), "target: property is not allowed for type 'verify'");
}

// PBS's verify_filter: with ignore-verified, what was verified is skipped unless outdated.
TEST(BackupVerifyFilter, SkipsWhatWasVerifiedUnlessOutdated) {
  const int64_t now = 1700000000;
  Upid u;
  u.node = "n";
  u.type = "verify";
  u.user = "root@pam";
  u.starttime = now - 10 * 86400;  // verified ten days ago
  std::string ten_days = u.ToString();
  BackupVerifyFilter all;
  EXPECT_TRUE(all.Includes("ok", ten_days, now));
  BackupVerifyFilter skip{true, std::nullopt};
  EXPECT_TRUE(skip.Includes("", "", now));  // never verified
  EXPECT_FALSE(skip.Includes("ok", ten_days, now));
  EXPECT_FALSE(skip.Includes("failed", ten_days, now));  // as PBS: a failed state is not outdated either
  EXPECT_TRUE((BackupVerifyFilter{true, 7}).Includes("ok", ten_days, now));
  EXPECT_FALSE((BackupVerifyFilter{true, 30}).Includes("ok", ten_days, now));
  EXPECT_TRUE((BackupVerifyFilter{true, 0}).Includes("ok", ten_days, now));
  EXPECT_TRUE((BackupVerifyFilter{true, 30}).Includes("ok", "not a upid", now));  // cannot be dated
}

class DatastoreJobSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = SqliteStore::Open(dir_.Sub("state.db"));
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }
  std::unique_ptr<DatastoreJobScheduler> Make() {
    return std::make_unique<DatastoreJobScheduler>(
        *store_, clock_, "node1",
        [this](const DatastoreJob& j) -> Result<std::string> {
          runs_.push_back(j.id + ":" + j.type);
          if (j.id == "broken") return Fail(FieldError("scratch-vmid", "VM 990 already exists"));
          return "UPID:node1:0:0:0:" + j.type + "::root@pam:";
        },
        [](const std::string&) { return false; });
  }
  DatastoreJob Job(std::map<std::string, std::string> f) {
    auto j = MakeDatastoreJob(f);
    EXPECT_TRUE(j) << Outcome(j);
    return *j;
  }

  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  FakeClock clock_{1700000000};  // 2023-11-14 22:13:20 UTC, a Tuesday
  std::vector<std::string> runs_;
};

TEST_F(DatastoreJobSchedulerTest, RunsEachTypeOnItsScheduleAndKeepsThemAcrossARestart) {
  auto sched = Make();
  ASSERT_TRUE(sched->Load());
  ASSERT_TRUE(sched->Create(Job({{"id", "verify"}, {"type", "verify"}, {"storage", "bb"}, {"schedule", "03:00 UTC"}})));
  ASSERT_TRUE(sched->Create(Job({{"id", "gc"}, {"type", "gc"}, {"storage", "bb"}, {"schedule", "sat 04:00 UTC"}})));
  EXPECT_EQ(sched->Create(Job({{"id", "gc"}, {"type", "gc"}, {"storage", "cc"}, {"schedule", "daily"}})).error().message,
            "Job 'gc' already exists");
  EXPECT_EQ(sched->RunDue(), 1700017200);  // 2023-11-15 03:00 UTC
  clock_.Advance(1700017200 - 1700000000);
  sched->RunDue();
  EXPECT_EQ(runs_, (std::vector<std::string>{"verify:verify"}));
  clock_.Advance(4 * 86400);  // past Saturday 04:00
  sched->RunDue();
  EXPECT_EQ(runs_, (std::vector<std::string>{"verify:verify", "verify:verify", "gc:gc"}));  // each once

  ASSERT_TRUE(sched->Update("gc", {{"enabled", "0"}}, {}));
  EXPECT_EQ(sched->Update("none", {{"enabled", "0"}}, {}).error().fields.at("id"), "No such job 'none'");
  sched.reset();
  sched = Make();
  ASSERT_TRUE(sched->Load());
  ASSERT_EQ(sched->List().size(), 2u);
  EXPECT_FALSE(sched->Get("gc")->enabled);
  EXPECT_EQ(sched->Get("verify")->last_upid, "UPID:node1:0:0:0:verify::root@pam:");
  auto upid = sched->RunNow("gc");  // a disabled job still runs on demand
  ASSERT_TRUE(upid);
  EXPECT_EQ(runs_.back(), "gc:gc");
  ASSERT_TRUE(sched->Delete("gc"));
  EXPECT_EQ(sched->List().size(), 1u);
}

// A scheduled run that cannot start leaves a failed task (through OnLaunchFailed), which
// becomes the job's last-upid; run by hand, the caller gets the error instead.
TEST_F(DatastoreJobSchedulerTest, ARunThatCannotStartLeavesAFailedTask) {
  auto sched = Make();
  ASSERT_TRUE(sched->Load());
  std::vector<std::string> failed;
  sched->OnLaunchFailed([&](const DatastoreJob& j, const std::string& error) -> Result<std::string> {
    failed.push_back(j.id + ": " + error);
    return std::string("UPID:node1:0:0:0:") + DatastoreJobTaskType(j.type) + ":failed:root@pam:";
  });
  ASSERT_TRUE(sched->Create(Job({{"id", "broken"}, {"type", "drill"}, {"storage", "bb"}, {"vmid", "100"},
                                 {"scratch-vmid", "990"}, {"schedule", "03:00 UTC"}})));
  sched->RunDue();  // the first tick after a start (nothing due yet)
  clock_.Advance(1700017200 - 1700000000);
  sched->RunDue();
  EXPECT_EQ(failed, (std::vector<std::string>{"broken: scratch-vmid: VM 990 already exists"}));
  EXPECT_EQ(sched->Get("broken")->last_upid, "UPID:node1:0:0:0:restoredrill:failed:root@pam:");
  auto now = sched->RunNow("broken");
  ASSERT_FALSE(now);
  EXPECT_EQ(now.error().fields.at("scratch-vmid"), "VM 990 already exists");
  EXPECT_EQ(failed.size(), 1u);
}

}  // namespace
}  // namespace hearth
