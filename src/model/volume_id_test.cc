#include "model/volume_id.h"

#include <gtest/gtest.h>

namespace hearth {

TEST(VolumeId, Parse) {
  auto v = ParseVolumeId("local:100/vm-100-disk-0.qcow2");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->storage, "local");
  EXPECT_EQ(v->volname, "100/vm-100-disk-0.qcow2");
  EXPECT_FALSE(ParseVolumeId("nocolon"));
  EXPECT_FALSE(ParseVolumeId("1bad:x"));
  EXPECT_FALSE(ParseVolumeId("local:"));
}

TEST(DirVolname, Images) {
  auto v = ParseDirVolname("100/vm-100-disk-0.qcow2");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->vmid, 100);
  EXPECT_EQ(v->format, "qcow2");
  EXPECT_EQ(v->RelativePath(), "images/100/vm-100-disk-0.qcow2");
  EXPECT_FALSE(ParseDirVolname("100/vm-101-disk-0.qcow2"));  // owner mismatch
  EXPECT_FALSE(ParseDirVolname("100/vm-100-disk-0.exe"));
}

TEST(DirVolname, LinkedClone) {
  auto v = ParseDirVolname("100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->vmid, 101);
  EXPECT_EQ(v->base_volname, "100/base-100-disk-0.qcow2");
  EXPECT_FALSE(ParseDirVolname("100/vm-100-disk-0.qcow2/101/vm-101-disk-0.qcow2"));  // base must be base-
}

TEST(DirVolname, OtherContent) {
  EXPECT_EQ(ParseDirVolname("iso/tiny.iso")->RelativePath(), "iso/tiny.iso");
  EXPECT_EQ(ParseDirVolname("snippets/user.yaml")->content, ContentType::kSnippets);
}

TEST(DirVolname, RejectsPathEscapes) {
  for (const char* bad : {"iso/../../etc/passwd", "../x", "iso/.hidden.iso", "/etc/passwd", "iso/a/b.iso",
                          "snippets/..", "iso/", "weird/x", "iso/x y.iso", "100/../vm-100-disk-0.qcow2"})
    EXPECT_FALSE(ParseDirVolname(bad)) << bad;
}

TEST(DiskName, Parse) {
  EXPECT_EQ(ParseDiskName("vm-100-disk-3")->index, 3);
  EXPECT_TRUE(ParseDiskName("base-100-disk-0")->base);
  EXPECT_TRUE(ParseDiskName("vm-100-cloudinit")->cloudinit);
  EXPECT_FALSE(ParseDiskName("vm-0100-disk-0"));
  // Snapshot RAM state volumes, named as qemu-server names them.
  auto st = ParseDiskName("vm-100-state-before_upgrade-2");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->vmid, 100);
  EXPECT_EQ(st->state, "before_upgrade-2");
  EXPECT_FALSE(st->cloudinit);
  EXPECT_EQ(ParseDiskName("vm-100-disk-0")->state, "");
  EXPECT_FALSE(ParseDiskName("vm-100-state-1snap"));  // a snapshot name starts with a letter
  EXPECT_FALSE(ParseDiskName("vm-100-state-" + std::string(41, 'a')));
  EXPECT_FALSE(ParseDiskName("vm-100-state-a.b"));
}

}  // namespace hearth

namespace hearth {
namespace {

TEST(UploadNames, NormalisedAndCheckedAsPveStorage) {
  EXPECT_EQ(NormalizeContentFilename("C:\\isos\\a b.iso"), "a_b.iso");
  EXPECT_EQ(NormalizeContentFilename("../../etc/x.iso\n"), "x.iso");
  EXPECT_EQ(NormalizeContentFilename("\xc3\xbc.iso"), "__.iso");
  auto err = [](ContentType ct, const char* n) {
    auto st = CheckUploadFileName(ct, n);
    return st ? std::string("ok") : st.error().fields.at("filename");
  };
  EXPECT_EQ(err(ContentType::kIso, "debian.ISO"), "ok");
  EXPECT_EQ(err(ContentType::kIso, "noext"), "wrong file extension");
  EXPECT_EQ(err(ContentType::kIso, ".."), "wrong file extension");
  EXPECT_NE(err(ContentType::kIso, ".hidden.iso"), "ok");
  EXPECT_NE(err(ContentType::kIso, (std::string(300, 'a') + ".iso").c_str()), "ok");
  EXPECT_EQ(err(ContentType::kVztmpl, "debian-12.tar.zst"), "ok");
  EXPECT_EQ(err(ContentType::kVztmpl, "debian-12.zip"), "wrong file extension");
  EXPECT_EQ(err(ContentType::kImport, "disk.qcow2"), "ok");
  EXPECT_EQ(err(ContentType::kImport, "d.txt"), "invalid filename or wrong extension");
  EXPECT_EQ(err(ContentType::kSnippets, "user-data.yaml"), "ok");
}

}  // namespace
}  // namespace hearth
