#include "jobs/replication_job.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

std::string FieldOf(const Result<ReplicationJob>& r) {
  if (r) return "ok";
  return r.error().fields.empty() ? r.error().message
                                  : r.error().fields.begin()->first + ": " + r.error().fields.begin()->second;
}

TEST(ReplicationJob, IdsAsProxmoxChecksThem) {
  EXPECT_EQ(*ParseReplicationJobId("100-0"), std::make_pair(100, 0));
  EXPECT_EQ(*ParseReplicationJobId("123456789-7"), std::make_pair(123456789, 7));
  EXPECT_EQ(ParseReplicationJobId("99-0").error().message, "invalid replication job id '99-0' (guest IDs < 100 are reserved)");
  EXPECT_EQ(ParseReplicationJobId("100").error().message, "invalid replication job id '100'");
  EXPECT_FALSE(ParseReplicationJobId("0100-1"));
  EXPECT_FALSE(ParseReplicationJobId("100-1;rm"));
  EXPECT_FALSE(ParseReplicationJobId("100-1234567890"));
}

TEST(ReplicationJob, FieldsChecksAndStoredForm) {
  auto j = MakeReplicationJob({{"id", "100-0"}, {"type", "local"}, {"target", "nodeb"}, {"schedule", "*/5"},
                               {"rate", "12.5"}, {"comment", "offsite"}});
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(j->guest, 100);
  EXPECT_EQ(j->Schedule(), "*/5");
  EXPECT_EQ(j->ToJson()["jobnum"], 0);
  auto back = ReplicationJob::FromJson(j->ToJson());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->ToJson(), j->ToJson());
  auto plain = MakeReplicationJob({{"id", "101-1"}, {"type", "local"}, {"target", "b"}});
  EXPECT_EQ(plain->Schedule(), "*/15");  // Proxmox's default
  EXPECT_FALSE(plain->ToJson().contains("schedule"));

  EXPECT_EQ(FieldOf(MakeReplicationJob({{"id", "100-0"}, {"type", "local"}})),
            "target: property is missing and it is not optional");
  EXPECT_EQ(FieldOf(MakeReplicationJob({{"id", "100-0"}, {"type", "remote"}, {"target", "b"}})),
            "type: value 'remote' does not have a value in the enumeration 'local'");
  EXPECT_EQ(FieldOf(MakeReplicationJob({{"id", "100-0"}, {"type", "local"}, {"target", "b"}, {"rate", "0.5"}})),
            "rate: value must have a minimum value of 1");
  EXPECT_EQ(FieldOf(MakeReplicationJob({{"id", "100-0"}, {"type", "local"}, {"target", "b"}, {"schedule", "bogus"}}))
                .substr(0, 26),
            "schedule: invalid format -");
  EXPECT_EQ(FieldOf(MakeReplicationJob({{"id", "100-0"}, {"type", "local"}, {"target", "-b"}})),
            "target: invalid format - value does not look like a valid node name");
  EXPECT_EQ(FieldOf(MakeReplicationJob({{"id", "100-0"}, {"type", "local"}, {"target", "b"}, {"comment", std::string(4097, 'c')}})),
            "comment: value may only be 4096 characters long");
  EXPECT_EQ(FieldOf(MakeReplicationJob({{"id", "7-0"}, {"type", "local"}, {"target", "b"}})),
            "id: invalid format - invalid replication job id '7-0' (guest IDs < 100 are reserved)");
}

TEST(ReplicationJob, UpdatesKeepTargetFixed) {
  auto j = *MakeReplicationJob({{"id", "100-0"}, {"type", "local"}, {"target", "b"}, {"rate", "10"}});
  auto u = UpdateReplicationJob(j, {{"comment", "x"}, {"disable", "1"}}, {"rate"});
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_FALSE(u->rate);
  EXPECT_TRUE(u->disable);
  EXPECT_EQ(u->comment, "x");
  EXPECT_EQ(UpdateReplicationJob(j, {}, {"target"}).error().message, "unable to delete required option 'target'");
  EXPECT_EQ(UpdateReplicationJob(j, {}, {"bogus"}).error().message, "no such option 'bogus'");
  EXPECT_EQ(FieldOf(UpdateReplicationJob(j, {{"target", "c"}}, {})).substr(0, 8), "target: ");
  EXPECT_FALSE(UpdateReplicationJob(j, {{"rate", "5"}}, {"rate"}));
}

TEST(ReplicationJob, NextSyncBacksOffAfterFailures) {
  auto j = *MakeReplicationJob({{"id", "100-0"}, {"type", "local"}, {"target", "b"}, {"schedule", "*/15"}});
  ReplicationState s;
  s.last_try = 1700000000;  // 22:13:20 UTC
  EXPECT_EQ(NextSync(j, s), 1700000100);  // 22:15:00
  s.fail_count = 1;
  EXPECT_EQ(NextSync(j, s), 1700000000 + 5 * 60);
  s.fail_count = 3;
  EXPECT_EQ(NextSync(j, s), 1700000000 + 15 * 60);
  s.fail_count = 9;
  EXPECT_EQ(NextSync(j, s), 1700000000 + 30 * 60);
  j.disable = true;
  EXPECT_EQ(NextSync(j, s), 0);
  j.remove_job = "full";
  EXPECT_EQ(NextSync(j, s), 1);  // removal runs at once, even for a disabled job
  auto back = ReplicationState::FromJson(s.ToJson());
  EXPECT_EQ(back.fail_count, 9);
  EXPECT_EQ(back.last_try, 1700000000);
}

TEST(ReplicationJob, SnapshotNamesRoundTrip) {
  EXPECT_EQ(ReplicationSnapshotName("100-0", 1700000000), "__replicate_100-0_1700000000__");
  auto p = ParseReplicationSnapshotName("__replicate_100-0_1700000000__");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->first, "100-0");
  EXPECT_EQ(p->second, 1700000000);
  EXPECT_FALSE(ParseReplicationSnapshotName("__replicate_100-0_17x__"));
  EXPECT_FALSE(ParseReplicationSnapshotName("snap1"));
  // Found by fuzz_send_stream: leading zeros made a second name for the same job and time.
  EXPECT_FALSE(ParseReplicationSnapshotName("__replicate_1001-07_00000000__"));
  EXPECT_FALSE(ParseReplicationSnapshotName("__replicate_100-0_01700000000__"));
}

TEST(ReplicationRemote, NodeOrPathWithTheirChecks) {
  std::string fp = "AA";
  for (int i = 0; i < 31; ++i) fp += ":0B";
  auto r = MakeReplicationRemote({{"node", "b"}, {"host", "10.0.0.2"}, {"fingerprint", fp},
                                  {"apitoken", "PVEAPIToken=repl@pve!b=0123-abcd"}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->apitoken, "repl@pve!b=0123-abcd");
  EXPECT_EQ(r->ToJson(false)["apitoken"], "repl@pve!b");
  EXPECT_EQ(ReplicationRemote::FromJson(r->ToJson(true))->apitoken, r->apitoken);
  auto p = MakeReplicationRemote({{"node", "usb"}, {"path", "/mnt/usb"}});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->IsPath());
  EXPECT_FALSE(MakeReplicationRemote({{"node", "b"}, {"host", "10.0.0.2"}, {"apitoken", "repl@pve!b=x"}}));
  EXPECT_FALSE(MakeReplicationRemote({{"node", "b"}, {"path", "relative"}}));
  EXPECT_FALSE(MakeReplicationRemote({{"node", "b"}, {"path", "/a/../etc"}}));
  EXPECT_FALSE(MakeReplicationRemote({{"node", "b"}, {"path", "/a"}, {"host", "h"}}));
  EXPECT_FALSE(MakeReplicationRemote({{"node", "b"}, {"host", "h;rm -rf"}, {"fingerprint", fp}, {"apitoken", "a@pve!b=c"}}));
}

}  // namespace
}  // namespace hearth
