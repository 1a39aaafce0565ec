#include "firewall/firewall.h"

#include <gtest/gtest.h>

#include "core/testing/temp_dir.h"
#include "state/sqlite/sqlite_store.h"

namespace hearth {
namespace {

class FakeNft final : public NftBackend {
 public:
  Status Run(const std::string& script) override {
    if (!refuse.empty() && script.find(refuse) != std::string::npos) return Fail(FailedPrecondition("nftables refused the rule set: " + refuse));
    scripts.push_back(script);
    return Ok();
  }
  Status Check(const std::string&) override { return Ok(); }
  std::vector<std::string> scripts;
  std::string refuse;
};

class FirewallServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*SqliteStore::Open(dir_.Sub("db")));
    fw_ = std::make_unique<FirewallService>(FirewallDeps{*store_, nft_, "n1", [] { return std::vector<FwNic>{{100, 0, "BC:24:11:00:00:01"}}; },
                                                         nullptr, nullptr, {8006}, nullptr});
  }
  std::vector<std::string> Actions(const FwScope& scope) {
    std::vector<std::string> out;
    auto rules = fw_->Rules(scope);
    for (const auto& r : *rules) out.push_back(r.Get("action") + (r.Has("dport") ? ":" + r.Get("dport") : ""));
    return out;
  }
  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  FakeNft nft_;
  std::unique_ptr<FirewallService> fw_;
};

const FwScope kCluster{FwEnv::kCluster, 0};

TEST_F(FirewallServiceTest, NewRulesGoFirstAndStayOffUnlessEnabled) {
  ASSERT_TRUE(fw_->AddRule(kCluster, {{"type", "in"}, {"action", "ACCEPT"}, {"proto", "tcp"}, {"dport", "22"}}));
  ASSERT_TRUE(fw_->AddRule(kCluster, {{"type", "in"}, {"action", "DROP"}, {"proto", "tcp"}, {"dport", "80"}, {"enable", "1"}, {"comment", ""}}));
  auto rules = *fw_->Rules(kCluster);
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].Get("action"), "DROP");
  EXPECT_EQ(rules[0].Get("enable"), "1");
  EXPECT_FALSE(rules[0].Has("comment")) << "an empty value means unset, as Proxmox";
  EXPECT_EQ(rules[1].Get("enable"), "0");
}

TEST_F(FirewallServiceTest, MovetoInsertsBeforeTheRuleThatWasThere) {
  for (const char* port : {"4", "3", "2", "1"})
    ASSERT_TRUE(fw_->AddRule(kCluster, {{"type", "in"}, {"action", "ACCEPT"}, {"proto", "tcp"}, {"dport", port}}));
  EXPECT_EQ(Actions(kCluster), (std::vector<std::string>{"ACCEPT:1", "ACCEPT:2", "ACCEPT:3", "ACCEPT:4"}));
  ASSERT_TRUE(fw_->UpdateRule(kCluster, 0, {}, {}, 2, ""));
  EXPECT_EQ(Actions(kCluster), (std::vector<std::string>{"ACCEPT:2", "ACCEPT:1", "ACCEPT:3", "ACCEPT:4"}));
  ASSERT_TRUE(fw_->UpdateRule(kCluster, 3, {}, {}, 1, ""));
  EXPECT_EQ(Actions(kCluster), (std::vector<std::string>{"ACCEPT:2", "ACCEPT:4", "ACCEPT:1", "ACCEPT:3"}));
  ASSERT_TRUE(fw_->UpdateRule(kCluster, 0, {}, {}, 99, ""));
  EXPECT_EQ(Actions(kCluster), (std::vector<std::string>{"ACCEPT:4", "ACCEPT:1", "ACCEPT:3", "ACCEPT:2"}));
  auto missing = fw_->UpdateRule(kCluster, 4, {}, {}, std::nullopt, "");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "no rule at position 4");
}

TEST_F(FirewallServiceTest, DigestsGuardAgainstConcurrentEdits) {
  ASSERT_TRUE(fw_->AddRule(kCluster, {{"type", "in"}, {"action", "ACCEPT"}, {"macro", "SSH"}}));
  std::string digest = FirewallService::RulesDigest(*fw_->Rules(kCluster));
  ASSERT_TRUE(fw_->UpdateRule(kCluster, 0, {{"enable", "1"}}, {}, std::nullopt, digest));
  auto stale = fw_->DeleteRule(kCluster, 0, digest);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().message, "detected modified configuration - file changed by other user? Try again.");
  auto del = fw_->UpdateRule(kCluster, 0, {}, {"action"}, std::nullopt, "");
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().fields.at("delete"), "unable to delete required property 'action'");
}

TEST_F(FirewallServiceTest, ARuleSetTheKernelRefusesIsNotStored) {
  ASSERT_TRUE(fw_->SetOptions(kCluster, {{"enable", "1"}}, {}, ""));
  ASSERT_TRUE(fw_->AddRule(kCluster, {{"type", "in"}, {"action", "ACCEPT"}, {"macro", "SSH"}, {"enable", "1"}}));
  size_t applied = nft_.scripts.size();
  nft_.refuse = "th dport { 80 }";
  auto refused = fw_->AddRule(kCluster, {{"type", "in"}, {"action", "ACCEPT"}, {"macro", "HTTP"}, {"enable", "1"}});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("nftables refused"), std::string::npos);
  EXPECT_EQ(fw_->Rules(kCluster)->size(), 1u);
  EXPECT_EQ(nft_.scripts.size(), applied);
  // Options are checked per level, in Proxmox's words.
  auto bad = fw_->SetOptions({FwEnv::kVm, 100}, {{"policy_in", "allow"}}, {}, "");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().fields.at("policy_in"), "value 'allow' does not have a value in the enumeration 'ACCEPT, REJECT, DROP'");
  auto unknown = fw_->SetOptions(kCluster, {}, {"nosuch"}, "");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().fields.at("delete"), "no such option 'nosuch'");
}

TEST_F(FirewallServiceTest, VmRulesReachTheKernelForFirewalledNics) {
  ASSERT_TRUE(fw_->SetOptions(kCluster, {{"enable", "1"}}, {}, ""));
  ASSERT_TRUE(fw_->SetOptions({FwEnv::kVm, 100}, {{"enable", "1"}}, {}, ""));
  ASSERT_TRUE(fw_->AddRule({FwEnv::kVm, 100}, {{"type", "in"}, {"action", "ACCEPT"}, {"macro", "SSH"}, {"enable", "1"}}));
  EXPECT_NE(fw_->Applied().find("chain tap100i0-in"), std::string::npos) << fw_->Applied();
  auto forward = fw_->AddRule({FwEnv::kVm, 100}, {{"type", "forward"}, {"action", "ACCEPT"}});
  ASSERT_FALSE(forward);
  EXPECT_EQ(forward.error().fields.at("type"), "invalid rule type 'forward' for rule_env 'vm'");
}

}  // namespace
}  // namespace hearth
