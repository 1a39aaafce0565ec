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
}

}  // namespace hearth
