#include "model/vm_schema.h"

#include <gtest/gtest.h>

namespace hearth {

TEST(VmSchema, FindsIndexedKeys) {
  EXPECT_TRUE(FindVmKey("net31"));
  EXPECT_FALSE(FindVmKey("net32"));
  EXPECT_FALSE(FindVmKey("net"));
  EXPECT_FALSE(FindVmKey("net01"));
  EXPECT_EQ(FindVmKey("cores")->type, KeyType::kInteger);
  EXPECT_EQ(FindVmKey("onboot")->type, KeyType::kBoolean);
  EXPECT_EQ(FindVmKey("cpulimit")->type, KeyType::kNumber);
  EXPECT_EQ(FindVmKey("memory")->type, KeyType::kString);
  EXPECT_EQ(FindVmKey("agent")->type, KeyType::kString);
  EXPECT_FALSE(FindVmKey("bogus"));
}

TEST(VmSchema, TypeChecksNameTheField) {
  auto r = CanonicalVmValue("cores", "abc");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fields.at("cores"), "type check ('integer') failed - got 'abc'");
  EXPECT_FALSE(CanonicalVmValue("cores", "0"));
  EXPECT_FALSE(CanonicalVmValue("onboot", "true"));  // top-level booleans are 0/1 only
  EXPECT_TRUE(CanonicalVmValue("onboot", "1"));
  auto unknown = CanonicalVmValue("bogus", "1");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().fields.at("bogus").find("not defined in schema"), std::string::npos);
}

TEST(VmSchema, NamesAreDnsNames) {
  EXPECT_TRUE(CanonicalVmValue("name", "web-1.lab"));
  EXPECT_FALSE(CanonicalVmValue("name", "web_1"));
  EXPECT_FALSE(CanonicalVmValue("name", "-web"));
  EXPECT_FALSE(CanonicalVmValue("name", "a b"));
}

TEST(VmSchema, Canonicalisation) {
  EXPECT_EQ(CanonicalVmValue("tags", "Web,db;web prod").value(), "db;prod;web");
  EXPECT_EQ(CanonicalVmValue("boot", "order=scsi0;ide2;net0").value(), "order=scsi0;ide2;net0");
  EXPECT_FALSE(CanonicalVmValue("boot", "order=scsi0,ide2"));  // "," splits the property string
  EXPECT_EQ(CanonicalVmValue("boot", "cdn").value(), "cdn");
  EXPECT_EQ(CanonicalVmValue("net0", "model=virtio,bridge=vmbr0").value(), "virtio,bridge=vmbr0");
  EXPECT_EQ(CanonicalVmValue("scsi0", "local:4,iothread=on").value(), "local:4,iothread=1");
  EXPECT_FALSE(CanonicalVmValue("boot", "order=floppy0"));
  EXPECT_FALSE(CanonicalVmValue("tags", "a|b"));
}

TEST(VmSchema, RejectsHostileValues) {
  EXPECT_FALSE(CanonicalVmValue("name", "a\nb"));
  EXPECT_FALSE(CanonicalVmValue("ciuser", "root\nsudo: ALL"));
  EXPECT_FALSE(CanonicalVmValue("cpu", "host,flags=+aes;$(reboot)"));
  EXPECT_FALSE(CanonicalVmValue("machine", "q35 -device evil"));
  EXPECT_FALSE(CanonicalVmValue("serial0", "socket,evil"));
  EXPECT_FALSE(CanonicalVmValue("scsi0", "local:4,iothread=1,evil=1"));
  EXPECT_FALSE(CanonicalVmValue("ide2", "../../etc/passwd,media=cdrom"));
  EXPECT_FALSE(CanonicalVmValue("scsi0", "/images/../etc/shadow"));
  EXPECT_TRUE(CanonicalVmValue("description", "line one\nline two"));
  EXPECT_FALSE(CanonicalVmValue("description", std::string(9000, 'x')));
}

TEST(VmSchema, IpConfig) {
  EXPECT_TRUE(CanonicalVmValue("ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1"));
  EXPECT_TRUE(CanonicalVmValue("ipconfig0", "ip=dhcp,ip6=auto"));
  EXPECT_TRUE(CanonicalVmValue("ipconfig1", "ip6=fd00::5/64,gw6=fd00::1"));
  EXPECT_FALSE(CanonicalVmValue("ipconfig0", "ip=10.0.0.5"));
  EXPECT_FALSE(CanonicalVmValue("ipconfig0", "ip=10.0.0.5/33"));
  EXPECT_FALSE(CanonicalVmValue("ipconfig0", "gw=10.0.0.1"));
  EXPECT_FALSE(CanonicalVmValue("ipconfig0", "ip=dhcp,gw=10.0.0.1"));
}

TEST(VmSchema, SshKeysMustBeUrlEncodedKeys) {
  std::string key = "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIMx%2Fabc%20me%40host%0A";
  EXPECT_EQ(CanonicalVmValue("sshkeys", key).value(), key);  // stored as received
  EXPECT_FALSE(CanonicalVmValue("sshkeys", "ssh-ed25519 AAAA me"));  // not encoded
  EXPECT_FALSE(CanonicalVmValue("sshkeys", "not%20a%20key"));
}

TEST(VmSchema, AgentEnabledInAnyKeyOrder) {
  EXPECT_TRUE(AgentEnabled("1"));
  EXPECT_TRUE(AgentEnabled("enabled=1,fstrim_cloned_disks=0,type=virtio"));
  EXPECT_TRUE(AgentEnabled("fstrim_cloned_disks=1,enabled=1"));
  EXPECT_FALSE(AgentEnabled("0"));
  EXPECT_FALSE(AgentEnabled("enabled=0,type=virtio"));
  EXPECT_FALSE(AgentEnabled(""));
}

TEST(VmSchema, MemoryIsAPropertyString) {
  EXPECT_TRUE(CanonicalVmValue("memory", "2048"));
  EXPECT_TRUE(CanonicalVmValue("memory", "current=2048"));
  EXPECT_FALSE(CanonicalVmValue("memory", "8"));
  EXPECT_FALSE(CanonicalVmValue("memory", "lots"));
}

}  // namespace hearth
