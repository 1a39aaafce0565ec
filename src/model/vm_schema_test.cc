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
  EXPECT_TRUE(CanonicalVmValue("sshkeys", "not%20a%20key"));  // well encoded, so the schema passes it...
  EXPECT_FALSE(SshKeysValid("not%20a%20key"));                 // ...and the key check refuses it (500, as PVE)
  EXPECT_FALSE(SshKeysValid(key));  // the blob is too short to name its type
  // A real key (the blob starts with the length-prefixed type name).
  std::string real = "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIKyY6Gf7Z8f5rHqTfqvqzxwaD0MEa3U4pq6B1q8fWvbt%20me%40host%0A";
  EXPECT_TRUE(SshKeysValid(real));
  EXPECT_FALSE(SshKeysValid("ssh-rsa%20AAAAC3NzaC1lZDI1NTE5AAAAIKyY6Gf7Z8f5rHqTfqvqzxwaD0MEa3U4pq6B1q8fWvbt"));  // type mismatch
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

// Proxmox's own texts for format failures (JSONSchema.pm check_prop / parse_property_string).
TEST(VmSchema, FormatErrorsReadAsProxmox) {
  auto err = [](const char* k, const char* v) {
    auto r = CanonicalVmValue(k, v);
    return r ? std::string("ok") : r.error().fields.at(k);
  };
  EXPECT_EQ(err("net0", "virtio,foo=1"),
            "invalid format - format error\nnet0.foo: property is not defined in schema and the schema does not allow "
            "additional properties\n");
  EXPECT_EQ(err("net0", "virtio,bridge=a,bridge=b"), "invalid format - duplicate key in comma-separated list property: bridge\n");
  EXPECT_EQ(err("net0", "virtio,e1000"), "invalid format - duplicate key in comma-separated list property: model\n");
  EXPECT_EQ(err("net0", "bridge=vmbr0"),
            "invalid format - format error\nnet0.model: property is missing and it is not optional\n");
  EXPECT_EQ(err("net0", "virtio,tag=5000"), "invalid format - format error\nnet0.tag: value must have a maximum value of 4094\n");
  EXPECT_EQ(err("net0", "virtio,macaddr=01:00:00:00:00:00"),
            "invalid format - format error\nnet0.macaddr: invalid format - value does not look like a valid unicast MAC "
            "address\n\n");
  EXPECT_EQ(err("net0", "virtio,bridge="), "invalid format - missing key in comma-separated list property\n");
  EXPECT_EQ(err("boot", "order=scsi0;efidisk0"),
            "invalid format - format error\nboot.order: invalid format - invalid boot device 'efidisk0'\n\n");
  EXPECT_EQ(err("name", "under_score"), "invalid format - value does not look like a valid DNS name\n");
  EXPECT_EQ(CanonicalVmValue("boot", "order=scsi0;net0").value_or(""), "order=scsi0;net0");
  EXPECT_EQ(CanonicalVmValue("boot", "cdn").value_or(""), "cdn");
  EXPECT_EQ(CanonicalVmValue("description", "text\n\n  \n").value_or(""), "text");
  EXPECT_EQ(CanonicalVmValue("description", "\nlead\n\ninner").value_or(""), "\nlead\n\ninner");
}

// Device and firmware keys take only what Proxmox's schema takes (issue: any string passed).
TEST(VmSchema, DeviceKeysFollowProxmoxFormats) {
  auto err = [](const char* k, const char* v) {
    auto r = CanonicalVmValue(k, v);
    return r ? std::string("ok") : r.error().fields.at(k);
  };
  for (auto [k, v] : std::vector<std::pair<const char*, const char*>>{
           {"audio0", "device=ich9-intel-hda,driver=none"}, {"watchdog", "i6300esb,action=reset"},
           {"watchdog", "model=ib700"}, {"rng0", "/dev/urandom,max_bytes=1024,period=1000"},
           {"virtiofs3", "share1,cache=never,direct-io=1"}, {"numa0", "cpus=0-1;4,memory=512,policy=bind"},
           {"bootdisk", "scsi0"}, {"startdate", "now"}, {"startdate", "2024-1-2T3:04:05"},
           {"vmstatestorage", "local"}, {"cpu", "x86-64-v2-AES,flags=+aes;-pcid,hidden=1"}, {"cpu", "host"},
           {"cpu", "Skylake-Client-v4,phys-bits=host"}})
    EXPECT_EQ(err(k, v), "ok") << k << "=" << v;
  EXPECT_EQ(err("audio0", "ich9-intel-hda"),
            "invalid format - value without key, but schema does not define a default key\n");
  EXPECT_EQ(err("audio0", "device=foo"),
            "invalid format - format error\naudio0.device: value 'foo' does not have a value in the enumeration "
            "'ich9-intel-hda, intel-hda, AC97'\n");
  EXPECT_EQ(err("watchdog", "model=i6300esb,action=${jndi}"),
            "invalid format - format error\nwatchdog.action: value '${jndi}' does not have a value in the enumeration "
            "'reset, shutdown, poweroff, pause, debug, none'\n");
  EXPECT_EQ(err("rng0", "max_bytes=5"), "invalid format - format error\nrng0.source: property is missing and it is not optional\n");
  EXPECT_NE(err("numa0", "cpus=0-999999;x"), "ok");
  EXPECT_NE(err("numa0", "memory=5"), "ok");
  EXPECT_NE(err("virtiofs0", "zz;rm -rf"), "ok");
  EXPECT_EQ(err("bootdisk", "zz"), "invalid format - invalid boot disk 'zz'\n");
  EXPECT_EQ(err("bootdisk", "ide7"), "invalid format - invalid boot disk 'ide7'\n");
  EXPECT_EQ(err("bootdisk", "efidisk0"), "value does not match the regex pattern");
  EXPECT_EQ(err("startdate", "zz"), "value does not match the regex pattern");
  EXPECT_EQ(err("vmstatestorage", "a"), "invalid format - storage ID 'a' cannot be shorter than 2 characters\n");
  EXPECT_EQ(err("vmstatestorage", "no such"), "invalid format - storage ID 'no such' contains illegal characters\n");
  EXPECT_EQ(err("cpu", "-1"), "invalid format - Built-in cputype '-1' is not defined (missing 'custom-' prefix?)\n");
  EXPECT_EQ(err("cpu", "custom-fast"), "invalid format - Custom cputype 'fast' not found\n");
  EXPECT_EQ(err("cpu", "host,flags=+avx512"),
            "invalid format - VM-specific CPU flags must be a subset of: aes, amd-no-ssb, amd-ssbd, hv-evmcs, "
            "hv-tlbflush, ibpb, md-clear, nested-virt, pcid, pdpe1gb, spec-ctrl, ssbd, virt-ssbd\n");
  EXPECT_EQ(err("cpu", "host,reported-model=kvm64"),
            "invalid format - Property 'reported-model' not allowed in VM-specific CPU config.\n");
  EXPECT_EQ(err("cicustom", "user=local:snippets/../../../etc/shadow"),
            "invalid format - format error\ncicustom.user: volume name 'snippets/../../../etc/shadow' leaves its storage\n");
  EXPECT_EQ(err("cicustom", "user=local:snippets/u.yaml,network=local:snippets/n.yaml"), "ok");
  EXPECT_NE(err("cicustom", "user=/etc/shadow"), "ok");
  EXPECT_NE(err("cpu", "host,phys-bits=7"), "ok");
  EXPECT_NE(err("cpu", "host,hv-vendor-id=waytoolongvendor"), "ok");
}

}  // namespace hearth
