#include "model/storage_config.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace hearth {
namespace {

using Params = std::map<std::string, std::string>;

std::string MessageOf(const Error& e) {
  std::string m = e.message;
  for (const auto& [k, v] : e.fields) m += " [" + k + ": " + v + "]";
  return m;
}

TEST(StorageId, ProxmoxRules) {
  EXPECT_TRUE(CheckStorageId("local"));
  EXPECT_TRUE(CheckStorageId("tank-2.fast_ssd"));
  auto short_id = CheckStorageId("a");
  ASSERT_FALSE(short_id);
  EXPECT_EQ(short_id.error().fields.at("storage"), "invalid format - storage ID 'a' cannot be shorter than 2 characters");
  for (const char* bad : {"1abc", "ab-", "a b", "a/b", "a:b", "-ab", "äb"}) {
    auto r = CheckStorageId(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().fields.at("storage"), "invalid format - storage ID '" + std::string(bad) + "' contains illegal characters");
  }
  EXPECT_FALSE(CheckStorageId(std::string(65, 'a')));  // hearth's bound
}

TEST(MakeStorageConfig, DirGetsItsDefaultContentAndACanonicalPath) {
  std::vector<std::string> warnings;
  auto cfg = MakeStorageConfig("fast", "dir", {{"path", "/srv//vm/"}, {"shared", "yes"}}, &warnings);
  ASSERT_TRUE(cfg) << MessageOf(cfg.error());
  EXPECT_EQ(cfg->Get("path"), "/srv/vm");
  EXPECT_EQ(cfg->Get("content"), "images,rootdir");
  EXPECT_EQ(cfg->Get("shared"), "1");
  EXPECT_TRUE(cfg->Shared());
  EXPECT_TRUE(warnings.empty());
}

TEST(MakeStorageConfig, ProxmoxsChecksAndTexts) {
  auto missing = MakeStorageConfig("x1", "dir", {}, nullptr);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "missing value for required option 'path'");
  auto unexpected = MakeStorageConfig("x1", "dir", {{"path", "/a"}, {"sparse", "1"}}, nullptr);
  ASSERT_FALSE(unexpected);
  EXPECT_EQ(unexpected.error().message, "unexpected property 'sparse'");
  auto shared_zfs = MakeStorageConfig("z1", "zfspool", {{"pool", "rpool/data"}, {"shared", "1"}}, nullptr);
  ASSERT_FALSE(shared_zfs);
  EXPECT_EQ(shared_zfs.error().message, "unexpected property 'shared'");
  auto path = MakeStorageConfig("x1", "dir", {{"path", "/srv/a b"}}, nullptr);
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().message, "illegal path for directory storage: /srv/a b");
  auto root = MakeStorageConfig("x1", "dir", {{"path", "//"}}, nullptr);  // fuzz find: "/" once canonical
  ASSERT_FALSE(root);
  EXPECT_EQ(root.error().message, "illegal path for directory storage: //");
  auto relative = MakeStorageConfig("x1", "dir", {{"path", "srv"}}, nullptr);
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().fields.at("path"), "invalid format - value does not look like a valid absolute path");
  auto type = MakeStorageConfig("x1", "ceph", {}, nullptr);
  ASSERT_FALSE(type);
  EXPECT_EQ(type.error().fields.at("type"),
            "value 'ceph' does not have a value in the enumeration 'btrfs, dir, lvmthin, nfs, zfspool'");
  auto boolean = MakeStorageConfig("x1", "dir", {{"path", "/a"}, {"disable", "maybe"}}, nullptr);
  ASSERT_FALSE(boolean);
  EXPECT_EQ(boolean.error().fields.at("disable"), "type check ('boolean') failed - got 'maybe'");
  auto lf = MakeStorageConfig("x1", "dir", {{"path", "/a\n\tshared 1"}}, nullptr);
  ASSERT_FALSE(lf);
  EXPECT_EQ(lf.error().fields.at("path"), "property contains a line feed");  // no injected lines
}

TEST(MakeStorageConfig, ContentTheTypeCannotHoldIsWarnedAndDropped) {
  std::vector<std::string> warnings;
  auto cfg = MakeStorageConfig("thin", "lvmthin", {{"vgname", "pve"}, {"thinpool", "data"}, {"content", "images,iso"}},
                               &warnings);
  ASSERT_TRUE(cfg) << MessageOf(cfg.error());
  EXPECT_EQ(cfg->Get("content"), "images");
  EXPECT_EQ(warnings, std::vector<std::string>{"storage does not support content type 'iso'"});
  auto none = MakeStorageConfig("thin", "lvmthin", {{"vgname", "pve"}, {"thinpool", "data"}, {"content", "iso"}}, nullptr);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "storage does not support content type 'none'");
  auto mixed = MakeStorageConfig("d1", "dir", {{"path", "/a"}, {"content", "none,images"}}, nullptr);
  ASSERT_FALSE(mixed);
  EXPECT_EQ(mixed.error().message, "unable to combine 'none' with other content types");
  EXPECT_EQ(MakeStorageConfig("d1", "dir", {{"path", "/a"}, {"content", "none"}}, nullptr)->Get("content"), "none");
  auto bad = MakeStorageConfig("d1", "dir", {{"path", "/a"}, {"content", "images,vms"}}, nullptr);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().fields.at("content"), "invalid format - invalid content type 'vms'");
}

TEST(MakeStorageConfig, NfsDefaultsItsMountPathAndIsShared) {
  auto cfg = MakeStorageConfig("nas", "nfs", {{"server", "192.0.2.10"}, {"export", "/export/vm"}}, nullptr);
  ASSERT_TRUE(cfg) << MessageOf(cfg.error());
  EXPECT_EQ(cfg->Get("path"), "/mnt/pve/nas");
  EXPECT_EQ(cfg->Get("content"), "images");
  EXPECT_TRUE(cfg->Shared());
  auto server = MakeStorageConfig("nas", "nfs", {{"server", "-oProxyCommand=x"}, {"export", "/e"}}, nullptr);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().fields.at("server"), "invalid format - value does not look like a valid server name or IP address");
}

TEST(MakeStorageConfig, ZfsAndLvmNamesNeverLookLikeOptions) {
  EXPECT_FALSE(MakeStorageConfig("z1", "zfspool", {{"pool", "-o"}}, nullptr));
  EXPECT_FALSE(MakeStorageConfig("z1", "zfspool", {{"pool", "rpool data"}}, nullptr));
  EXPECT_FALSE(MakeStorageConfig("z1", "zfspool", {{"pool", "rpool/../etc"}}, nullptr));
  EXPECT_FALSE(MakeStorageConfig("z1", "zfspool", {{"pool", "rpool//data"}}, nullptr));
  EXPECT_FALSE(MakeStorageConfig("z1", "zfspool", {{"pool", "rpool/./data"}}, nullptr));
  EXPECT_TRUE(MakeStorageConfig("z1", "zfspool", {{"pool", "rpool/data.v2"}}, nullptr));
  EXPECT_TRUE(MakeStorageConfig("z1", "zfspool", {{"pool", "rpool/data"}, {"sparse", "1"}, {"blocksize", "16k"}}, nullptr));
  auto bs = MakeStorageConfig("z1", "zfspool", {{"pool", "rpool"}, {"blocksize", "12k"}}, nullptr);
  ASSERT_FALSE(bs);
  EXPECT_EQ(bs.error().fields.at("blocksize"),
            "value '12k' is not a valid ZFS blocksize. Must be a power of 2 between 512B and 16MiB (e.g., 4k, 8k, 16k, 64k, 1m).");
  auto lvm = MakeStorageConfig("t1", "lvmthin", {{"vgname", "-pve"}, {"thinpool", "data"}}, nullptr);
  ASSERT_FALSE(lvm);
  EXPECT_EQ(lvm.error().fields.at("vgname"), "invalid format - lvm name '-pve' contains illegal characters");
}

TEST(MakeStorageConfig, PruneBackupsIsAPropertyString) {
  auto cfg = MakeStorageConfig("d1", "dir", {{"path", "/a"}, {"prune-backups", "keep-last=3,keep-daily=7"}}, nullptr);
  ASSERT_TRUE(cfg) << MessageOf(cfg.error());
  EXPECT_EQ(cfg->Get("prune-backups"), "keep-daily=7,keep-last=3");
  auto both = MakeStorageConfig("d1", "dir", {{"path", "/a"}, {"prune-backups", "keep-all=1,keep-last=3"}}, nullptr);
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().fields.at("prune-backups"), "keep-all cannot be set together with other options.");
  EXPECT_FALSE(MakeStorageConfig("d1", "dir", {{"path", "/a"}, {"prune-backups", "keep-last=-1"}}, nullptr));
}

TEST(MakeStorageConfig, AFormatTheTypeCannotUseIsDropped) {
  std::vector<std::string> warnings;
  auto cfg = MakeStorageConfig("b1", "btrfs", {{"path", "/b"}, {"format", "qcow2"}}, &warnings);
  ASSERT_TRUE(cfg);
  EXPECT_FALSE(cfg->options.count("format"));
  EXPECT_EQ(warnings, std::vector<std::string>{"storage does not support format 'qcow2'"});
}

TEST(MakeStorageConfig, BtrfsCompressIsAnEnumAndExcludesNocow) {
  auto ok = MakeStorageConfig("tank", "btrfs", {{"path", "/srv/tank"}, {"compress", "zstd"}}, nullptr);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->Get("compress"), "zstd");
  EXPECT_EQ(MakeStorageConfig("tank", "btrfs", {{"path", "/srv/tank"}, {"compress", "lz4"}}, nullptr).error().fields.at("compress"),
            "value 'lz4' does not have a value in the enumeration 'zstd, lzo, zlib'");
  EXPECT_EQ(MakeStorageConfig("tank", "btrfs", {{"path", "/srv/tank"}, {"compress", "zstd"}, {"nocow", "1"}}, nullptr)
                .error().fields.at("compress"),
            "cannot be used with nocow=1 (btrfs does not compress NOCOW files)");
  EXPECT_FALSE(MakeStorageConfig("d1", "dir", {{"path", "/srv/d"}, {"compress", "zstd"}}, nullptr));  // btrfs only
  EXPECT_FALSE(UpdateStorageConfig(*ok, {{"nocow", "1"}}, {}, nullptr));
  EXPECT_TRUE(UpdateStorageConfig(*ok, {{"nocow", "1"}}, {"compress"}, nullptr));
}

TEST(UpdateStorageConfig, FixedRequiredAndDeleteRules) {
  StorageConfig cur = *MakeStorageConfig("d1", "dir", {{"path", "/a"}, {"shared", "1"}}, nullptr);
  auto fixed = UpdateStorageConfig(cur, {{"path", "/b"}}, {}, nullptr);
  ASSERT_FALSE(fixed);
  EXPECT_EQ(fixed.error().message, "can't change value of fixed parameter 'path'");
  auto del_req = UpdateStorageConfig(cur, {}, {"path"}, nullptr);
  ASSERT_FALSE(del_req);
  EXPECT_EQ(del_req.error().message, "unable to delete required option 'path'");
  auto del_fixed = UpdateStorageConfig(cur, {}, {"snapshot-as-volume-chain"}, nullptr);
  ASSERT_FALSE(del_fixed);
  EXPECT_EQ(del_fixed.error().message, "unable to delete fixed option 'snapshot-as-volume-chain'");
  auto unknown = UpdateStorageConfig(cur, {}, {"sparse"}, nullptr);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message, "no such option 'sparse'");
  auto both = UpdateStorageConfig(cur, {{"shared", "0"}}, {"shared"}, nullptr);
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().message, "cannot set and delete property 'shared' at the same time!");
  auto ok = UpdateStorageConfig(cur, {{"disable", "1"}, {"nodes", "n2,n1"}}, {"shared"}, nullptr);
  ASSERT_TRUE(ok) << MessageOf(ok.error());
  EXPECT_TRUE(ok->Disabled());
  EXPECT_FALSE(ok->options.count("shared"));
  EXPECT_EQ(ok->Get("nodes"), "n1,n2");
  EXPECT_FALSE(ok->EnabledOn("n1"));
  EXPECT_FALSE(UpdateStorageConfig(*ok, {{"nodes", ","}}, {}, nullptr)->options.count("nodes"));  // fuzz find
  auto enabled = UpdateStorageConfig(*ok, {}, {"disable"}, nullptr);
  EXPECT_TRUE(enabled->EnabledOn("n1"));
  EXPECT_FALSE(enabled->EnabledOn("n3"));
}

TEST(StorageOptions, TheUnifiedSchemaAndWhatUpdateLeavesOut) {
  const auto& names = StorageOptionNames();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (auto k : {"path", "content", "pool", "thinpool", "server", "export", "blocksize", "prune-backups"})
    EXPECT_NE(std::find(names.begin(), names.end(), k), names.end()) << k;
  // Fixed in every Proxmox type that has them (its updateSchema drops them); `pool`, `server`
  // and `snapshot-as-volume-chain` are fixed only in some of Proxmox's types and stay.
  for (auto k : {"path", "export", "vgname", "thinpool"}) EXPECT_TRUE(StorageOptionFixedEverywhere(k)) << k;
  for (auto k : {"content", "disable", "nodes", "server", "pool", "snapshot-as-volume-chain"})
    EXPECT_FALSE(StorageOptionFixedEverywhere(k)) << k;
  EXPECT_TRUE(StorageOptionIsNumeric("disable"));
  EXPECT_TRUE(StorageOptionIsNumeric("max-protected-backups"));
  EXPECT_FALSE(StorageOptionIsNumeric("is_mountpoint"));  // a boolean or a path
}

TEST(StorageCfg, PrintsAsProxmoxAndParsesBack) {
  StorageConfig thin = *MakeStorageConfig("local-lvm", "lvmthin", {{"vgname", "pve"}, {"thinpool", "data"}}, nullptr);
  EXPECT_EQ(PrintStorageSection(thin), "lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent images,rootdir\n");
  StorageConfig dir = *MakeStorageConfig("backup", "dir",
                                         {{"path", "/mnt/backup"}, {"content", "backup"}, {"disable", "1"},
                                          {"prune-backups", "keep-last=3"}},
                                         nullptr);
  EXPECT_EQ(PrintStorageSection(dir),
            "dir: backup\n\tdisable\n\tpath /mnt/backup\n\tcontent backup\n\tprune-backups keep-last=3\n");
  std::vector<std::string> warnings;
  auto back = ParseStorageCfg(PrintStorageSection(thin) + "\n" + PrintStorageSection(dir), &warnings);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].options, thin.options);
  EXPECT_EQ((*back)[1].options, dir.options);
  EXPECT_TRUE(warnings.empty());
}

TEST(StorageCfg, AnInstallersFileWithMistakesKeepsWhatIsGood) {
  const char* text =
      "# written by hand\n"
      "dir: local\n"
      "\tpath /var/lib/vz\n"
      "\tcontent iso,vztmpl,backup,import\n"
      "\n"
      "zfspool: local-zfs\n"
      "\tpool rpool/data\n"
      "\tsparse\n"
      "\tshared 1\n"          // not a zfspool option: this key is dropped
      "\tcontent images,rootdir\n"
      "\n"
      "dir: nopath\n"         // required option missing: the section is dropped
      "\tcontent iso\n"
      "\n"
      "ceph: rbd\n"           // unknown type: dropped
      "\tpool x\n"
      "\n"
      "dir: local\n"          // defined twice: the second is dropped
      "\tpath /other\n";
  std::vector<std::string> warnings;
  auto cfgs = ParseStorageCfg(text, &warnings);
  ASSERT_TRUE(cfgs);
  ASSERT_EQ(cfgs->size(), 2u);
  EXPECT_EQ((*cfgs)[0].id, "local");
  EXPECT_EQ((*cfgs)[0].Get("content"), "backup,import,iso,vztmpl");
  EXPECT_EQ((*cfgs)[1].Get("sparse"), "1");
  EXPECT_FALSE((*cfgs)[1].options.count("shared"));
  EXPECT_EQ(warnings.size(), 4u);
  EXPECT_FALSE(ParseStorageCfg(std::string((1 << 20) + 1, '#'), nullptr));
}

}  // namespace
}  // namespace hearth
