#include "model/vm_snapshot.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace hearth {
namespace {

VmConfig Base() {
  VmConfig c;
  c.values = {{"memory", "512"}, {"scsi0", "local:100/vm-100-disk-0.qcow2,size=1G"},
              {"ide2", "local:iso/x.iso,media=cdrom"}, {"description", "my vm"}};
  return c;
}

Status Snap(VmConfig& c, const std::string& name, int64_t t) {
  HEARTH_TRY(PrepareSnapshot(c, name, "", t, nullptr));
  return CommitSnapshot(c, name);
}

TEST(VmSnapshot, NamesAsProxmox) {
  EXPECT_TRUE(CheckNewSnapshotName("before-upgrade_1"));
  EXPECT_EQ(CheckNewSnapshotName("1st").error().fields.at("snapname"), "invalid format - invalid configuration ID '1st'");
  EXPECT_EQ(CheckNewSnapshotName("a").error().fields.at("snapname"), "invalid format - invalid configuration ID 'a'");
  EXPECT_EQ(CheckNewSnapshotName(std::string(41, 'a')).error().fields.at("snapname"),
            "value may only be 40 characters long");
  EXPECT_EQ(CheckNewSnapshotName("current").error().message, "unable to use snapshot name 'current' (reserved name)");
  EXPECT_EQ(CheckNewSnapshotName("PENDING").error().message, "unable to use snapshot name 'pending' (reserved name)");
}

TEST(VmSnapshot, CreateCopiesTheAppliedValuesAndChainsParents) {
  VmConfig c = Base();
  c.pending["memory"] = "1024";  // pending changes are not in snapshots
  ASSERT_TRUE(PrepareSnapshot(c, "s1", "first", 1000, nullptr));
  EXPECT_EQ(c.Lock(), "snapshot");
  const auto& s1 = c.snapshots.at("s1");
  EXPECT_EQ(s1.at("snapstate"), "prepare");
  EXPECT_EQ(s1.at("snaptime"), "1000");
  EXPECT_EQ(s1.at("description"), "first");  // the snapshot's comment, not the VM's
  EXPECT_EQ(s1.at("memory"), "512");
  EXPECT_FALSE(s1.count("lock"));
  ASSERT_TRUE(CommitSnapshot(c, "s1"));
  EXPECT_EQ(c.Lock(), "");
  EXPECT_EQ(c.values.at("parent"), "s1");
  EXPECT_FALSE(c.snapshots.at("s1").count("snapstate"));
  EXPECT_EQ(PrepareSnapshot(c, "s1", "", 1, nullptr).error().message, "snapshot name 's1' already used");
  ASSERT_TRUE(Snap(c, "s2", 2000));
  EXPECT_EQ(c.snapshots.at("s2").at("parent"), "s1");
  EXPECT_EQ(c.values.at("parent"), "s2");

  // The file keeps it all, sections sorted by name, and reads back the same.
  std::string text = FormatConfFile(c);
  EXPECT_NE(text.find("\n[s1]\n#first\n"), std::string::npos) << text;
  auto back = ParseConfFile(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->snapshots, c.snapshots);
  EXPECT_EQ(back->values, c.values);
  EXPECT_EQ(back->pending, c.pending);
}

TEST(VmSnapshot, ChecksComeInProxmoxsOrder) {
  VmConfig c = Base();
  c.values["template"] = "1";
  EXPECT_EQ(PrepareSnapshot(c, "s", "", 1, nullptr).error().message, "you can't take a snapshot if it's a template");
  c = Base();
  c.values["lock"] = "backup";
  EXPECT_EQ(PrepareSnapshot(c, "s", "", 1, nullptr).error().message, "VM is locked (backup)");
  EXPECT_EQ(CheckRollback(c, "nope").error().message, "snapshot 'nope' does not exist");
  c.snapshots["s"] = {{"memory", "1"}};
  EXPECT_EQ(CheckRollback(c, "s").error().message, "VM is locked (backup)");
  c.values.erase("lock");
  c.snapshots["s"]["snapstate"] = "prepare";
  EXPECT_EQ(CheckRollback(c, "s").error().message, "unable to rollback to incomplete snapshot (snapstate = prepare)");
}

TEST(VmSnapshot, DeleteReparentsChildrenAndTheCurrentState) {
  VmConfig c = Base();
  ASSERT_TRUE(Snap(c, "s1", 1));
  ASSERT_TRUE(Snap(c, "s2", 2));
  ASSERT_TRUE(Snap(c, "s3", 3));
  ASSERT_TRUE(PrepareSnapshotDelete(c, "s2"));
  EXPECT_EQ(c.Lock(), "snapshot-delete");
  EXPECT_EQ(c.snapshots.at("s2").at("snapstate"), "delete");
  ASSERT_TRUE(FinishSnapshotDelete(c, "s2"));
  EXPECT_EQ(c.snapshots.at("s3").at("parent"), "s1");
  EXPECT_EQ(c.values.at("parent"), "s3");
  ASSERT_TRUE(PrepareSnapshotDelete(c, "s3"));
  ASSERT_TRUE(FinishSnapshotDelete(c, "s3"));
  EXPECT_EQ(c.values.at("parent"), "s1");
  ASSERT_TRUE(PrepareSnapshotDelete(c, "s1"));
  ASSERT_TRUE(FinishSnapshotDelete(c, "s1"));
  EXPECT_FALSE(c.values.count("parent"));
  EXPECT_TRUE(c.snapshots.empty());
  EXPECT_EQ(c.Lock(), "");
}

TEST(VmSnapshot, RollbackRestoresValuesKeepsDescriptionAndParksNewDisks) {
  VmConfig c = Base();
  ASSERT_TRUE(Snap(c, "s1", 1));
  c.values["memory"] = "2048";
  c.values["scsi1"] = "local:100/vm-100-disk-1.qcow2,size=2G";  // added after the snapshot
  c.values["description"] = "edited later";
  c.pending["cores"] = "4";
  ASSERT_TRUE(CheckRollback(c, "s1"));
  c.values["lock"] = "rollback";
  ASSERT_TRUE(ApplyRollback(c, "s1"));
  EXPECT_EQ(c.values.at("memory"), "512");
  EXPECT_FALSE(c.values.count("scsi1"));
  EXPECT_EQ(c.values.at("unused0"), "local:100/vm-100-disk-1.qcow2");
  EXPECT_EQ(c.values.at("description"), "edited later");
  EXPECT_EQ(c.values.at("parent"), "s1");
  EXPECT_EQ(c.Lock(), "");
  EXPECT_TRUE(c.pending.empty());
  EXPECT_EQ(c.snapshots.size(), 1u);
}

TEST(VmSnapshot, RamStateStaysInTheSnapshotAndCountsAsTheVmsVolume) {
  VmConfig c = Base();
  ASSERT_TRUE(PrepareSnapshot(c, "ram", "", 1, nullptr));
  c.snapshots["ram"]["vmstate"] = "local:100/vm-100-state-ram.raw";
  c.snapshots["ram"]["runningmachine"] = "pc-i440fx-7.2";
  ASSERT_TRUE(CommitSnapshot(c, "ram"));
  // The state volume is the VM's: not adopted as an orphan, freed with the VM.
  auto refs = ReferencedVolumes(c);
  EXPECT_NE(std::find(refs.begin(), refs.end(), "local:100/vm-100-state-ram.raw"), refs.end());
  // Neither the state nor what the running QEMU was goes back into the config.
  c.values["lock"] = "rollback";
  ASSERT_TRUE(ApplyRollback(c, "ram"));
  EXPECT_FALSE(c.values.count("vmstate"));
  EXPECT_FALSE(c.values.count("runningmachine"));
  EXPECT_EQ(c.snapshots.at("ram").at("vmstate"), "local:100/vm-100-state-ram.raw");
  // A snapshot taken later does not copy a hibernated VM's running* keys.
  c.values["runningmachine"] = "pc-i440fx-7.2";
  ASSERT_TRUE(PrepareSnapshot(c, "later", "", 2, nullptr));
  EXPECT_FALSE(c.snapshots.at("later").count("runningmachine"));
}

TEST(VmSnapshot, RollbackReattachesADiskRemovedSinceAndDropsItsUnusedEntry) {
  VmConfig c = Base();
  ASSERT_TRUE(Snap(c, "s1", 1));
  c.pending_delete["scsi0"] = false;  // removed after the snapshot: it becomes unused0
  CommitPending(c, 100, [](const std::string&) { return true; });
  ASSERT_EQ(c.values.at("unused0"), "local:100/vm-100-disk-0.qcow2");
  c.values["lock"] = "rollback";
  ASSERT_TRUE(ApplyRollback(c, "s1"));
  EXPECT_EQ(c.values.at("scsi0"), "local:100/vm-100-disk-0.qcow2,size=1G");
  EXPECT_FALSE(c.values.count("unused0"));
}

TEST(VmSnapshot, DeletingTheLastSnapshotOfARemovedDiskParksItAsUnused) {
  VmConfig c = Base();
  c.values["scsi1"] = "local:100/vm-100-disk-1.qcow2,size=1G";
  ASSERT_TRUE(Snap(c, "s1", 1));
  c.pending_delete["scsi1"] = false;
  CommitPending(c, 100, [](const std::string&) { return true; });  // -> unused0
  c.pending_delete["unused0"] = false;                               // forgotten: the snapshot holds it
  auto r = CommitPending(c, 100, [](const std::string&) { return true; });
  EXPECT_TRUE(r.destroy_volumes.empty());
  EXPECT_FALSE(c.values.count("unused0"));
  ASSERT_TRUE(PrepareSnapshotDelete(c, "s1"));
  ASSERT_TRUE(FinishSnapshotDelete(c, "s1"));
  EXPECT_EQ(c.values.at("unused0"), "local:100/vm-100-disk-1.qcow2");  // reachable again, so freeable
}

TEST(VmSnapshot, ForceTakesUpADeleteThatFailedHalfway) {
  VmConfig c = Base();
  ASSERT_TRUE(Snap(c, "s1", 1));
  ASSERT_TRUE(PrepareSnapshotDelete(c, "s1"));  // ... then a volume failed: lock and state stay
  EXPECT_EQ(PrepareSnapshotDelete(c, "s1").error().message, "VM is locked (snapshot-delete)");
  ASSERT_TRUE(PrepareSnapshotDelete(c, "s1", /*force=*/true));
  ASSERT_TRUE(FinishSnapshotDelete(c, "s1"));
  EXPECT_EQ(c.Lock(), "");
}

TEST(VmConfig, DeletingAnUnusedEntryBesideTheDriveThatUsesItKeepsTheDisk) {
  VmConfig c = Base();
  c.values["unused0"] = "local:100/vm-100-disk-0.qcow2";  // the same disk as scsi0
  c.pending_delete["unused0"] = false;
  auto r = CommitPending(c, 100, [](const std::string&) { return true; });
  EXPECT_TRUE(r.destroy_volumes.empty());
  EXPECT_FALSE(c.values.count("unused0"));
}

TEST(VmSnapshot, ADiskASnapshotHoldsIsNeverDestroyedByAConfigChange) {
  VmConfig c = Base();
  ASSERT_TRUE(Snap(c, "s1", 1));
  c.pending_delete["scsi0"] = true;  // a forced delete would free it
  auto r = CommitPending(c, 100, [](const std::string&) { return true; });
  EXPECT_TRUE(r.destroy_volumes.empty());
  EXPECT_EQ(ReferencedVolumes(c), std::vector<std::string>{"local:100/vm-100-disk-0.qcow2"});  // destroy frees it
}

TEST(VmSnapshot, TheParserTakesSnapshotSectionsOnly) {
  EXPECT_TRUE(ParseConfFile("memory: 1\n\n[Before_Upgrade]\nmemory: 2\n"));
  EXPECT_FALSE(ParseConfFile("memory: 1\n\n[special:cloudinit]\nx: 1\n"));
  EXPECT_FALSE(ParseConfFile("memory: 1\n\n[s1]\nmemory: 2\n\n[s1]\nmemory: 3\n"));
}

}  // namespace
}  // namespace hearth
