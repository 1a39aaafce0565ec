#include "jobs/snapshot_schedule.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(SnapshotSchedule, FieldsChecksAndStoredForm) {
  auto s = MakeSnapshotSchedule({{"id", "nightly"}, {"schedule", "02:30 UTC"}, {"vmid", "101, 100"},
                                 {"keep-daily", "7"}, {"keep-last", "2"}, {"vmstate", "1"}});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->vmids, (std::vector<int>{100, 101}));
  EXPECT_EQ(s->keep.Print(), "keep-last=2,keep-daily=7");
  EXPECT_TRUE(s->Utc());
  s->last_run = 1700000000;  // 2023-11-14 22:13:20 UTC
  EXPECT_EQ(s->NextRun(), 1700015400);  // 2023-11-15 02:30:00 UTC
  EXPECT_EQ(s->SnapshotName(1700015400), "auto-nightly-20231115-023000");
  EXPECT_TRUE(s->Owns("auto-nightly-20231115-023000"));
  EXPECT_FALSE(s->Owns("auto-nightly2-20231115-023000"));
  EXPECT_FALSE(s->Owns("before-upgrade"));
  EXPECT_EQ(s->RunTimeOf("auto-nightly-20231115-023000"), 1700015400);
  EXPECT_EQ(s->RunTimeOf("before-upgrade"), std::nullopt);
  auto back = SnapshotSchedule::FromJson(s->ToJson());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ToJson(), s->ToJson());
  EXPECT_EQ(back->last_run, 1700000000);
}

TEST(SnapshotSchedule, ErrorsNameTheField) {
  auto field = [](std::map<std::string, std::string> f) {
    auto s = MakeSnapshotSchedule(f);
    if (s) return std::string("ok");
    return s.error().fields.empty() ? s.error().message : s.error().fields.begin()->first + ": " + s.error().fields.begin()->second;
  };
  EXPECT_EQ(field({{"id", "n"}, {"schedule", "xyz"}, {"vmid", "100"}}),
            "schedule: invalid format - invalid calendar event 'xyz' - unable to parse calendar event at 'xyz' - "
            "Context(\"weekday\")");
  EXPECT_EQ(field({{"id", "Nightly"}, {"schedule", "daily"}, {"vmid", "100"}}).substr(0, 20), "id: invalid format -");
  EXPECT_EQ(field({{"id", std::string(17, 'a')}, {"schedule", "daily"}, {"vmid", "100"}}).substr(0, 20),
            "id: invalid format -");
  EXPECT_EQ(field({{"id", "n"}, {"schedule", "daily"}}), "vmid: set 'vmid' (a list of VMs) or 'tag' (VMs with that tag)");
  EXPECT_EQ(field({{"id", "n"}, {"schedule", "daily"}, {"vmid", "99"}}),
            "vmid: invalid format - value '99' does not look like a valid VM ID");
  EXPECT_EQ(field({{"id", "n"}, {"schedule", "daily"}, {"tag", "k8s;x"}}),
            "tag: invalid format - value does not match the regex pattern");
  EXPECT_EQ(field({{"id", "n"}, {"schedule", "daily"}, {"tag", "k8s"}, {"keep-last", "-1"}}),
            "keep-last: value must have a minimum value of 0");
  EXPECT_EQ(field({{"id", "n"}, {"schedule", "daily"}, {"tag", "k8s"}, {"keep-all", "1"}, {"keep-last", "1"}}),
            "keep-last: keep-all cannot be set together with other options.");
  EXPECT_EQ(field({{"id", "n"}, {"schedule", "daily"}, {"tag", "k8s"}, {"bogus", "1"}}),
            "bogus: property is not defined in schema and the schema does not allow additional properties");
}

TEST(SnapshotSchedule, UpdatesAsProxmoxsConfigUpdates) {
  auto s = MakeSnapshotSchedule({{"id", "n"}, {"schedule", "hourly"}, {"tag", "k8s"}, {"keep-last", "3"}});
  ASSERT_TRUE(s);
  auto u = UpdateSnapshotSchedule(*s, {{"keep-hourly", "24"}, {"vmid", "100"}}, {"tag"});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->keep.Print(), "keep-last=3,keep-hourly=24");
  EXPECT_EQ(u->tag, "");
  EXPECT_EQ(UpdateSnapshotSchedule(*s, {}, {"tag"}).error().fields.at("vmid"),
            "set 'vmid' (a list of VMs) or 'tag' (VMs with that tag)");
  EXPECT_EQ(UpdateSnapshotSchedule(*s, {{"tag", "x"}}, {"tag"}).error().fields.at("tag"),
            "cannot set and delete property 'tag' at the same time!");
  EXPECT_EQ(UpdateSnapshotSchedule(*s, {}, {"schedule"}).error().fields.at("schedule"),
            "unable to delete required option 'schedule'");
  EXPECT_TRUE(UpdateSnapshotSchedule(*s, {}, {"keep-last"})->keep.KeepsAll());
}

}  // namespace
}  // namespace hearth
