#include "net/host_network.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/testing/temp_dir.h"
#include "net/testing/fake_host_links.h"
#include "state/sqlite/sqlite_store.h"
#include "sys/posix/posix_file_system.h"
#include "sys/testing/fake_clock.h"

namespace hearth {
namespace {

class HostNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_.AddNic("eth0", {"192.168.1.10/24"});
    kernel_.AddNic("eth1");
    kernel_.AddNic("eth2");
    kernel_.AddNic("tap100i0");
    store_ = std::move(*SqliteStore::Open(dir_.Sub("db")));
    tasks_ = std::make_unique<TaskManager>(*store_, fs_, clock_, "n1", dir_.Sub("tasks"), 1);
    Make();
  }
  void Make() {
    net_.reset();
    net_ = std::make_unique<HostNetwork>(*store_, kernel_, *tasks_, "n1", [this](const std::string& bridge) {
      return bridge == "vmbr9" ? std::vector<std::string>{"VM 101 (net0)"} : std::vector<std::string>{};
    });
  }
  void TearDown() override {
    net_.reset();
    tasks_.reset();
  }
  // Runs an apply task to its end; its exit status.
  std::string Apply(int confirm = 0) {
    auto upid = net_->Apply("root@pam", confirm);
    EXPECT_TRUE(upid);
    tasks_->WaitIdle();
    return tasks_->Get(*upid)->record.exitstatus;
  }
  Error CreateError(const std::string& iface, std::map<std::string, std::string> p) {
    auto st = net_->Create(iface, std::move(p));
    EXPECT_FALSE(st);
    return st ? Error{} : st.error();
  }

  FakeClock clock_;
  TempDir dir_;
  PosixFileSystem fs_;
  FakeHostLinks kernel_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TaskManager> tasks_;
  std::unique_ptr<HostNetwork> net_;
};

TEST_F(HostNetworkTest, EditsArePendingUntilApplied) {
  ASSERT_TRUE(net_->Create("vmbr1", {{"type", "bridge"}, {"bridge_ports", "eth1"}, {"cidr", "10.0.0.1/24"},
                                     {"autostart", "1"}}));
  EXPECT_EQ(kernel_.Link("vmbr1"), nullptr);
  auto changes = net_->Changes();
  ASSERT_TRUE(changes);
  EXPECT_NE(changes->find("+auto vmbr1"), std::string::npos) << *changes;
  EXPECT_NE(changes->find("+\taddress 10.0.0.1/24"), std::string::npos) << *changes;
  auto v = net_->Get("vmbr1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->opts.at("address"), "10.0.0.1");
  EXPECT_EQ(v->opts.at("netmask"), "24");
  EXPECT_EQ(Apply(), "OK");
  ASSERT_NE(kernel_.Link("vmbr1"), nullptr);
  EXPECT_EQ(kernel_.Link("eth1")->master, "vmbr1");
  EXPECT_EQ(*net_->Changes(), "");
  // Revert drops pending edits only.
  ASSERT_TRUE(net_->Delete("vmbr1"));
  EXPECT_NE(net_->Changes()->find("-auto vmbr1"), std::string::npos);
  ASSERT_TRUE(net_->Revert());
  EXPECT_EQ(*net_->Changes(), "");
  EXPECT_TRUE(net_->Get("vmbr1"));
}

TEST_F(HostNetworkTest, BadEditsNameTheirField) {
  EXPECT_EQ(CreateError("eth1", {{"type", "bridge"}}).fields.at("iface"), "interface already exists");
  EXPECT_EQ(CreateError("vmbr1", {{"type", "bridge"}, {"bridge_ports", "eth7"}}).fields.at("bridge_ports"),
            "bridge 'vmbr1' - unable to find bridge port 'eth7'");
  EXPECT_EQ(CreateError("vmbr1", {{"type", "bridge"}, {"bridge_ports", "tap100i0"}}).fields.at("bridge_ports"),
            "'tap100i0' belongs to a guest");
  EXPECT_EQ(CreateError("vmbr1", {{"type", "bridge"}, {"cidr", "10.0.0.1/24"}, {"address", "10.0.0.2"}}).fields.at("address"),
            "address conflicts with cidr");
  EXPECT_EQ(CreateError("vmbr1", {{"type", "OVSBridge"}}).fields.count("type"), 1u);
  EXPECT_EQ(CreateError("averyveryverylongname", {{"type", "bridge"}}).fields.count("iface"), 1u);
  EXPECT_EQ(CreateError("vlan5", {{"type", "vlan"}}).fields.at("vlan-raw-device"), "missing vlan-raw-device option");
  ASSERT_TRUE(net_->Create("vmbr1", {{"type", "bridge"}, {"bridge_ports", "eth1"}, {"cidr", "10.0.0.1/24"},
                                     {"gateway", "10.0.0.254"}}));
  EXPECT_EQ(CreateError("vmbr2", {{"type", "bridge"}, {"bridge_ports", "eth1"}}).fields.at("bridge_ports"),
            "eth1 is already used on interface 'vmbr1'.");
  EXPECT_EQ(CreateError("vmbr2", {{"type", "bridge"}, {"cidr", "10.1.0.1/24"}, {"gateway", "10.1.0.254"}}).fields.at("gateway"),
            "Default gateway already exists on interface 'vmbr1'.");
  EXPECT_EQ(CreateError("vmbr2", {{"type", "bridge"}, {"bridge_ports", "vmbr1"}}).fields.at("bridge_ports"),
            "'vmbr1' is a bridge and cannot be a port of 'vmbr2'");
  EXPECT_EQ(CreateError("bond0", {{"type", "bond"}, {"slaves", "eth2"}, {"bond_mode", "active-backup"},
                                  {"bond-primary", "eth1"}}).fields.at("bond-primary"),
            "bond 'bond0' - bond-primary interface is not a slave");
}

TEST_F(HostNetworkTest, ForeignInterfacesAreReadOnlyUntilAdopted) {
  auto st = net_->Update("eth0", {{"type", "eth"}, {"cidr", "192.168.1.20/24"}}, {}, false);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().fields.at("iface").find("adopt=1"), std::string::npos);
  EXPECT_FALSE(net_->Delete("eth0"));
  auto view = net_->Get("eth0");
  ASSERT_TRUE(view);
  EXPECT_FALSE(view->managed);
  EXPECT_TRUE(view->exists);
  EXPECT_EQ(view->opts.at("address"), "192.168.1.10");
  ASSERT_TRUE(net_->Update("eth0", {{"type", "eth"}, {"cidr", "192.168.1.20/24"}}, {}, true));
  EXPECT_EQ(Apply(), "OK");
  EXPECT_EQ(kernel_.Link("eth0")->addrs, std::vector<std::string>{"192.168.1.20/24"});
  // Released, not deleted.
  ASSERT_TRUE(net_->Delete("eth0"));
  EXPECT_EQ(Apply(), "OK");
  ASSERT_NE(kernel_.Link("eth0"), nullptr);
  EXPECT_EQ(kernel_.Link("eth0")->addrs, std::vector<std::string>{"192.168.1.20/24"});
}

TEST_F(HostNetworkTest, ABridgeVmsUseCannotBeDeleted) {
  ASSERT_TRUE(net_->Create("vmbr9", {{"type", "bridge"}}));
  auto st = net_->Delete("vmbr9");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().fields.at("iface"), "bridge 'vmbr9' is used by VM 101 (net0); move those NICs to another bridge first");
}

TEST_F(HostNetworkTest, AFailedApplyLeavesKernelAndConfigurationAsBefore) {
  ASSERT_TRUE(net_->Create("vmbr1", {{"type", "bridge"}, {"bridge_ports", "eth1"}, {"cidr", "10.0.0.1/24"},
                                     {"gateway", "10.0.0.254"}}));
  kernel_.fail_on = "route add";
  EXPECT_NE(Apply().find("apply failed, the previous configuration is back"), std::string::npos);
  EXPECT_EQ(kernel_.Link("vmbr1"), nullptr);
  EXPECT_EQ(kernel_.Link("eth1")->master, "");
  EXPECT_NE(net_->Changes()->find("+iface vmbr1"), std::string::npos);  // still pending
  EXPECT_TRUE(net_->Get("vmbr1"));
  kernel_.fail_on.clear();
  EXPECT_EQ(Apply(), "OK");
  EXPECT_NE(kernel_.Link("vmbr1"), nullptr);
}

TEST_F(HostNetworkTest, AnUnconfirmedApplyIsTakenBackAtTheNextStart) {
  ASSERT_TRUE(net_->Create("vmbr1", {{"type", "bridge"}, {"bridge_ports", "eth1"}}));
  EXPECT_EQ(Apply(3600), "OK");
  ASSERT_TRUE(net_->OpenWindow());
  EXPECT_EQ(net_->OpenWindow()->user, "root@pam");
  ASSERT_NE(kernel_.Link("vmbr1"), nullptr);
  Make();  // the daemon died during the confirm window
  ASSERT_TRUE(net_->Restore());
  EXPECT_EQ(kernel_.Link("vmbr1"), nullptr);
  EXPECT_EQ(kernel_.Link("eth1")->master, "");
  EXPECT_FALSE(net_->OpenWindow());
  // The change that was taken back is pending again.
  EXPECT_NE(net_->Changes()->find("+iface vmbr1"), std::string::npos);
}

TEST_F(HostNetworkTest, TheApplyingUsersNextRequestConfirms) {
  ASSERT_TRUE(net_->Create("vmbr1", {{"type", "bridge"}}));
  EXPECT_EQ(Apply(3600), "OK");
  net_->NoteRequest("someone@pve");
  EXPECT_TRUE(net_->OpenWindow());
  net_->NoteRequest("root@pam");
  for (int i = 0; i < 10000 && net_->OpenWindow(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(net_->OpenWindow());
  EXPECT_FALSE(net_->Confirm("root@pam"));  // nothing left to confirm
  Make();
  ASSERT_TRUE(net_->Restore());
  EXPECT_NE(kernel_.Link("vmbr1"), nullptr);  // confirmed: kept across a restart
}

TEST_F(HostNetworkTest, RestoreSetsTheAppliedConfigurationUpAgain) {
  ASSERT_TRUE(net_->Create("vmbr1", {{"type", "bridge"}, {"bridge_ports", "eth1"}, {"cidr", "10.0.0.1/24"}, {"autostart", "1"}}));
  EXPECT_EQ(Apply(), "OK");
  ASSERT_TRUE(kernel_.DeleteLink("vmbr1"));  // a host reboot loses the bridge
  Make();
  ASSERT_TRUE(net_->Restore());
  ASSERT_NE(kernel_.Link("vmbr1"), nullptr);
  EXPECT_EQ(kernel_.Link("vmbr1")->addrs, std::vector<std::string>{"10.0.0.1/24"});
  EXPECT_TRUE(kernel_.Link("vmbr1")->up);
}

}  // namespace
}  // namespace hearth
