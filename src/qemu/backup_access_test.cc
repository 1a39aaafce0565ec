// The reading of query-named-block-nodes that decides whether a dirty bitmap is trusted.
#include "qemu/backup_access.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(ReadNamedBlockNodes, NodesSizesAndBitmaps) {
  // As QEMU 7.2 answers (trimmed): an unnamed file node, the drive's format node with one
  // recording bitmap and one left inconsistent by a kill.
  auto ret = nlohmann::json::parse(R"([
    {"node-name": "#block123", "drv": "file", "image": {"virtual-size": 1073938432}},
    {"node-name": "drive-scsi0", "drv": "qcow2", "image": {"virtual-size": 1073741824},
     "dirty-bitmaps": [
       {"name": "hearth-backup-1764000000", "recording": true, "persistent": false, "busy": false,
        "granularity": 4194304, "count": 12582912},
       {"name": "old", "recording": false, "persistent": true, "busy": false, "granularity": 65536,
        "count": 0, "inconsistent": true}]}])");
  auto nodes = ReadNamedBlockNodes(ret);
  ASSERT_EQ(nodes.size(), 2u);
  const auto& d = nodes[1];
  EXPECT_EQ(d.node_name, "drive-scsi0");
  EXPECT_EQ(d.driver, "qcow2");
  EXPECT_EQ(d.virtual_size, 1073741824u);
  ASSERT_EQ(d.bitmaps.size(), 2u);
  EXPECT_EQ(d.bitmaps[0].name, "hearth-backup-1764000000");
  EXPECT_TRUE(d.bitmaps[0].recording);
  EXPECT_FALSE(d.bitmaps[0].inconsistent);  // QEMU leaves the key out when false
  EXPECT_EQ(d.bitmaps[0].count, 12582912u);
  EXPECT_EQ(d.bitmaps[0].granularity, 4194304u);
  EXPECT_TRUE(d.bitmaps[1].inconsistent);
  EXPECT_TRUE(d.bitmaps[1].persistent);
}

// Whatever QEMU sends: wrong types are skipped or read as "not recording", never thrown.
TEST(ReadNamedBlockNodes, AnyShape) {
  for (const char* text : {"{}", "null", "[1, \"x\", null]", R"([{"node-name": 5}])",
                           R"([{"node-name": "n", "image": 3, "dirty-bitmaps": {"a": 1}}])",
                           R"([{"node-name": "n", "dirty-bitmaps": [{"name": 1}, {"name": "b", "recording": "yes",
                               "count": -1}]}])"}) {
    auto nodes = ReadNamedBlockNodes(nlohmann::json::parse(text));
    for (const auto& n : nodes) {
      EXPECT_EQ(n.virtual_size, 0u) << text;
      for (const auto& b : n.bitmaps) {
        EXPECT_FALSE(b.recording) << text;
        EXPECT_EQ(b.count, 0u) << text;
      }
    }
  }
}

}  // namespace
}  // namespace hearth
