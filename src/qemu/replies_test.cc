#include "qemu/replies.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(QmpLine, ReturnsErrorsAndEvents) {
  auto r = ReadQmpLine(R"({"return": {"status": "running"}})");
  EXPECT_EQ(r.kind, QmpLine::Kind::kReturn);
  EXPECT_EQ(r.value["status"], "running");
  auto e = ReadQmpLine(R"({"error": {"class": "GenericError", "desc": "no such device"}})");
  EXPECT_EQ(e.kind, QmpLine::Kind::kError);
  EXPECT_EQ(e.error, "no such device");
  EXPECT_EQ(ReadQmpLine(R"({"event": "SHUTDOWN", "data": {}})").kind, QmpLine::Kind::kEvent);
  EXPECT_EQ(ReadQmpLine("not json").kind, QmpLine::Kind::kNoise);
  EXPECT_EQ(ReadQmpLine("[1,2]").kind, QmpLine::Kind::kNoise);
}

// Shapes that made nlohmann's value() throw before the readers existed.
TEST(QmpLine, ErrorOfAnyShapeIsAnError) {
  for (const char* line : {R"({"error": "boom"})", R"({"error": 5})", R"({"error": {"desc": 7}})", R"({"error": null})"}) {
    auto e = ReadQmpLine(line);
    EXPECT_EQ(e.kind, QmpLine::Kind::kError) << line;
    EXPECT_EQ(e.error, "unknown error") << line;
  }
}

TEST(QmpLine, DeepNestingIsRefusedBeforeParsing) {
  std::string deep = R"({"return": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(ReadQmpLine(deep).kind, QmpLine::Kind::kNoise);
}

TEST(QgaReply, MalformedRepliesAreErrorsNotExceptions) {
  EXPECT_FALSE(ReadQgaReply(R"({"error": "string, not object"})", "guest-ping"));
  EXPECT_EQ(ReadQgaReply(R"({"error": "x"})", "guest-ping").error().message,
            "guest agent command 'guest-ping' failed - error");
  EXPECT_EQ(ReadQgaReply("42", "guest-ping").error().message, "guest agent command 'guest-ping': malformed reply");
  EXPECT_FALSE(ReadQgaReply(std::string(5000, '[') + std::string(5000, ']'), "guest-info"));
  EXPECT_TRUE(ReadQgaReply("{}", "guest-ping")->is_null());
  EXPECT_EQ(*ReadQgaReply("\xFF{\"return\": {\"pid\": 9}}", "guest-exec"), nlohmann::json({{"pid", 9}}));
}

TEST(QgaReply, SyncReplyMatchesOnlyItsIntegerId) {
  EXPECT_TRUE(IsQgaSyncReply("\xFF\xFF{\"return\": 12345}", 12345));
  EXPECT_FALSE(IsQgaSyncReply(R"({"return": 12344})", 12345));
  EXPECT_FALSE(IsQgaSyncReply(R"({"return": "12345"})", 12345));
  EXPECT_FALSE(IsQgaSyncReply(R"({"return": 12345.0})", 12345));
  EXPECT_FALSE(IsQgaSyncReply("garbage", 12345));
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(QmpReturns, RunStateAndBlockStatsOfAnyShape) {
  EXPECT_EQ(QmpRunState(nlohmann::json::parse(R"({"status": "paused", "running": false})")), "paused");
  EXPECT_EQ(QmpRunState(nlohmann::json::parse(R"({"status": 3})")), "");
  EXPECT_EQ(QmpRunState(nlohmann::json::parse("[]")), "");
  auto t = SumBlockStats(nlohmann::json::parse(
      R"([{"device": "drive-scsi0", "stats": {"rd_bytes": 100, "wr_bytes": 7}}, {"stats": {"rd_bytes": 5}}, {"device": "x"},
          {"stats": "bad"}, 17, {"stats": {"rd_bytes": -4, "wr_bytes": "9"}}])"));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->rd_bytes, 105u);
  EXPECT_EQ(t->wr_bytes, 7u);
  EXPECT_FALSE(SumBlockStats(nlohmann::json::parse(R"({"stats": {}})")));
}

TEST(QmpReaders, MigrationEventsAndMachineType) {
  auto ev = ReadQmpLine(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "MIGRATION", "data": {"status": "completed"}})");
  EXPECT_EQ(QmpEventName(ev.value), "MIGRATION");
  EXPECT_EQ(MigrationEventStatus(ev.value), "completed");
  EXPECT_EQ(MigrationEventStatus(nlohmann::json::parse(R"({"event": "MIGRATION", "data": 5})")), "");
  EXPECT_EQ(MigrationEventStatus(nlohmann::json::parse(R"({"event": "MIGRATION"})")), "");
  EXPECT_EQ(QmpEventName(nlohmann::json::parse(R"({"event": 7})")), "");
  EXPECT_EQ(MigrationErrorDesc(nlohmann::json::parse(R"({"status": "failed", "error-desc": "No space left"})")),
            "No space left");
  EXPECT_EQ(MigrationErrorDesc(nlohmann::json::parse("[]")), "");
  EXPECT_EQ(MachineTypeFromQom("pc-i440fx-7.2-machine"), "pc-i440fx-7.2");
  EXPECT_EQ(MachineTypeFromQom("pc-q35-7.2-machine"), "pc-q35-7.2");
  EXPECT_EQ(MachineTypeFromQom("-machine"), "");
  EXPECT_EQ(MachineTypeFromQom("pc"), "");
  EXPECT_EQ(MachineTypeFromQom(nlohmann::json::parse(R"({"type": "pc-machine"})")), "");
}

TEST(QmpReaders, BlockJobsAndNodesOfAnyShape) {
  auto done = nlohmann::json::parse(R"({"event": "BLOCK_JOB_COMPLETED", "data": {"device": "mirror-scsi0",
      "len": 1073741824, "offset": 1073741824, "speed": 0, "type": "mirror", "error": "No space left on device"}})");
  BlockJobEvent e = ReadBlockJobEvent(done);
  EXPECT_EQ(e.job, "mirror-scsi0");
  EXPECT_EQ(e.error, "No space left on device");
  EXPECT_EQ(e.len, 1073741824u);
  auto err = nlohmann::json::parse(R"({"event": "BLOCK_JOB_ERROR", "data": {"device": "mirror-scsi0", "operation": "write"}})");
  EXPECT_EQ(ReadBlockJobEvent(err).error, "write error");
  EXPECT_EQ(ReadBlockJobEvent(nlohmann::json::parse(R"({"event": "X", "data": [1]})")).job, "");
  EXPECT_EQ(ReadBlockJobEvent(nlohmann::json::parse("7")).job, "");

  auto jobs = nlohmann::json::parse(R"([{"device": "other", "len": 1}, {"device": "mirror-scsi0", "len": 100,
      "offset": 40, "ready": false}, 5])");
  auto p = FindBlockJob(jobs, "mirror-scsi0");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->offset, 40u);
  EXPECT_FALSE(p->ready);
  EXPECT_FALSE(FindBlockJob(jobs, "mirror-scsi1"));
  EXPECT_FALSE(FindBlockJob(nlohmann::json::parse(R"({"device": "mirror-scsi0"})"), "mirror-scsi0"));
  auto ready = FindBlockJob(nlohmann::json::parse(R"([{"device": "j", "ready": true, "len": -1}])"), "j");
  ASSERT_TRUE(ready);
  EXPECT_TRUE(ready->ready);
  EXPECT_EQ(ready->len, 0u);  // a negative length is no length

  // query-block as QEMU 7.2 answers for scsi-hd (qdev id) and virtio-blk (QOM path).
  auto block = nlohmann::json::parse(R"([{"device": "", "qdev": "scsi0", "inserted": {"node-name": "drive-scsi0"}},
      {"device": "", "qdev": "/machine/peripheral/virtio0/virtio-backend", "inserted": {"node-name": "drive-virtio0-6b0f950500"}},
      {"device": "", "qdev": "ide2"}, {"qdev": "scsi1", "inserted": 3}, "junk"])");
  EXPECT_EQ(BlockNodeOfDevice(block, "scsi0"), "drive-scsi0");
  EXPECT_EQ(BlockNodeOfDevice(block, "virtio0"), "drive-virtio0-6b0f950500");
  EXPECT_EQ(BlockNodeOfDevice(block, "virtio"), "");  // no prefix matches
  EXPECT_EQ(BlockNodeOfDevice(block, "ide2"), "");    // an empty cdrom drive
  EXPECT_EQ(BlockNodeOfDevice(block, "scsi1"), "");
  EXPECT_EQ(BlockNodeOfDevice(block, ""), "");
}

}  // namespace
}  // namespace hearth
