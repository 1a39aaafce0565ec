// VmRegistry against a real SQLite store: what is in memory is what a restart would load.
#include "vms/vm_registry.h"

#include <gtest/gtest.h>

#include "core/testing/temp_dir.h"
#include "state/sqlite/sqlite_store.h"

namespace hearth {
namespace {

class VmRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = SqliteStore::Open(dir_.Sub("state.db"));
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    registry_ = std::make_unique<VmRegistry>(*store_, "n1");
  }
  VmEntry Placeholder(const std::string& lock) {
    VmEntry e;
    e.config.values = {{"lock", lock}};
    e.conf_text = FormatConfFile(e.config);
    return e;
  }
  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<VmRegistry> registry_;
};

TEST_F(VmRegistryTest, ReserveTakesAnIdOnceAndWritesTheStore) {
  ASSERT_TRUE(registry_->Reserve(100, Placeholder("create"), "VM 100 already exists"));
  auto again = registry_->Reserve(100, Placeholder("create"), "VM 100 already exists");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "VM 100 already exists");
  // Another registry over the same store (a second daemon's view) cannot take it either.
  VmRegistry other(*store_, "n1");
  EXPECT_EQ(other.Reserve(100, Placeholder("clone"), "VM 100 already exists").error().message, "VM 100 already exists");
  EXPECT_FALSE(other.Exists(100));  // and does not keep a half-taken entry
  EXPECT_EQ(*registry_->NextId(std::nullopt), 101);
  EXPECT_EQ(registry_->NextId(100).error().fields.at("vmid"), "VM 100 already exists");
}

TEST_F(VmRegistryTest, MutateChecksTheDigestAndChangesNothingOnFailure) {
  ASSERT_TRUE(registry_->Reserve(100, Placeholder("create"), "taken"));
  ASSERT_TRUE(registry_->Mutate(100, [](VmConfig& c) {
    c.values = {{"name", "a"}, {"memory", "512"}};
    return Ok();
  }));
  std::string digest;
  ASSERT_TRUE(registry_->Read(100, [&](const VmEntry& e) { digest = ConfDigest(e.conf_text); }));
  uint64_t gen = registry_->Generation();
  auto stale = registry_->Mutate(100, [](VmConfig& c) {
    c.values["name"] = "b";
    return Ok();
  }, "0000");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().message, "checksum mismatch (file change by other user?)");
  auto refused = registry_->Mutate(100, [](VmConfig& c) -> Status {
    c.values["name"] = "c";
    return Fail(FieldError("name", "no"));
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(registry_->Config(100)->Get("name"), "a");
  EXPECT_EQ(registry_->Generation(), gen);
  ASSERT_TRUE(registry_->Mutate(100, [](VmConfig& c) {
    c.values["name"] = "d";
    return Ok();
  }, digest));
  EXPECT_GT(registry_->Generation(), gen);
  // What the store holds is what memory holds.
  auto recs = store_->ListVms();
  ASSERT_TRUE(recs);
  ASSERT_EQ(recs->size(), 1u);
  EXPECT_NE((*recs)[0].conf.find("name: d"), std::string::npos);
  EXPECT_EQ(registry_->Config(101).error().message,
            "Configuration file 'nodes/n1/qemu-server/101.conf' does not exist");
}

}  // namespace
}  // namespace hearth
