#include "model/cloudinit.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>

namespace hearth {
namespace {

std::set<std::string> Keys(const YAML::Node& n) {
  std::set<std::string> out;
  for (const auto& kv : n) out.insert(kv.first.as<std::string>());
  return out;
}

std::map<std::string, std::string> Base() {
  return {{"name", "node1"}, {"net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0"}};
}

TEST(CloudInit, MinimalSeed) {
  auto seed = RenderNoCloud(100, Base());
  ASSERT_TRUE(seed) << seed.error().message;
  EXPECT_EQ(seed->user_data.rfind("#cloud-config\n", 0), 0u);
  YAML::Node u = YAML::Load(seed->user_data);
  EXPECT_EQ(u["hostname"].as<std::string>(), "node1");
  EXPECT_TRUE(u["package_upgrade"].as<bool>());  // ciupgrade defaults to 1
  EXPECT_FALSE(u["user"]);
  YAML::Node m = YAML::Load(seed->meta_data);
  EXPECT_EQ(m["local-hostname"].as<std::string>(), "node1");
  EXPECT_EQ(m["instance-id"].as<std::string>().size(), 40u);
  YAML::Node n = YAML::Load(seed->network_config);
  EXPECT_EQ(n["version"].as<int>(), 1);
  EXPECT_EQ(n["config"][0]["mac_address"].as<std::string>(), "bc:24:11:00:00:01");
  EXPECT_FALSE(n["config"][0]["subnets"]);  // no ipconfig0: leave the NIC to the image
}

TEST(CloudInit, EveryKey) {
  auto c = Base();
  c["net1"] = "e1000=BC:24:11:00:00:02";
  c["ipconfig0"] = "ip=10.0.0.10/24,gw=10.0.0.1,ip6=fd00::10/64,gw6=fd00::1";
  c["ipconfig1"] = "ip=dhcp,ip6=auto";
  c["ciuser"] = "ops";
  c["cipassword"] = "$6$salt$hash";
  c["sshkeys"] = "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIA%20a%40b%0Assh-rsa%20AAAAB3NzaC1yc2E%20c%40d%0A";
  c["nameserver"] = "10.0.0.1 1.1.1.1";
  c["searchdomain"] = "lab.example";
  c["ciupgrade"] = "0";
  auto seed = RenderNoCloud(100, c);
  ASSERT_TRUE(seed);
  YAML::Node u = YAML::Load(seed->user_data);
  EXPECT_EQ(u["user"].as<std::string>(), "ops");
  EXPECT_EQ(u["password"].as<std::string>(), "$6$salt$hash");
  EXPECT_FALSE(u["chpasswd"]["expire"].as<bool>());
  EXPECT_EQ(u["fqdn"].as<std::string>(), "node1.lab.example");
  ASSERT_EQ(u["ssh_authorized_keys"].size(), 2u);
  EXPECT_EQ(u["ssh_authorized_keys"][0].as<std::string>(), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA a@b");
  EXPECT_FALSE(u["package_upgrade"].as<bool>());
  YAML::Node n = YAML::Load(seed->network_config);
  auto s0 = n["config"][0]["subnets"];
  EXPECT_EQ(s0[0]["type"].as<std::string>(), "static");
  EXPECT_EQ(s0[0]["address"].as<std::string>(), "10.0.0.10");
  EXPECT_EQ(s0[0]["netmask"].as<std::string>(), "255.255.255.0");
  EXPECT_EQ(s0[0]["gateway"].as<std::string>(), "10.0.0.1");
  EXPECT_EQ(s0[1]["type"].as<std::string>(), "static6");
  EXPECT_EQ(s0[1]["address"].as<std::string>(), "fd00::10/64");
  auto s1 = n["config"][1]["subnets"];
  EXPECT_EQ(s1[0]["type"].as<std::string>(), "dhcp4");
  EXPECT_EQ(s1[1]["type"].as<std::string>(), "ipv6_slaac");
  auto ns = n["config"][2];
  EXPECT_EQ(ns["type"].as<std::string>(), "nameserver");
  EXPECT_EQ(ns["address"][1].as<std::string>(), "1.1.1.1");
  EXPECT_EQ(ns["search"][0].as<std::string>(), "lab.example");
}

TEST(CloudInit, InstanceIdFollowsContent) {
  auto a = RenderNoCloud(100, Base());
  auto c = Base();
  c["ciuser"] = "someone";
  auto b = RenderNoCloud(100, c);
  EXPECT_NE(YAML::Load(a->meta_data)["instance-id"].as<std::string>(),
            YAML::Load(b->meta_data)["instance-id"].as<std::string>());
  EXPECT_EQ(a->meta_data, RenderNoCloud(100, Base())->meta_data);  // deterministic
}

TEST(CloudInit, HostileValuesCannotChangeTheDocumentStructure) {
  // The API rejects most of these already; the renderer must be safe on its own.
  const std::vector<std::string> hostile = {
      "a\nroot: true", "x: y", "- item", "#comment", "{\"a\": 1}", "'quoted'", "\"dq\"", "a\\nb", "---\nnew: doc",
      "key: [1, 2]", "&anchor *alias", "!!python/object:os.system", "tab\there", "\u00fcnicode"};
  for (const auto& evil : hostile) {
    auto c = Base();
    c["name"] = evil;
    c["ciuser"] = evil;
    c["cipassword"] = evil;
    c["searchdomain"] = evil;
    auto seed = RenderNoCloud(100, c);
    ASSERT_TRUE(seed) << evil;
    YAML::Node u;
    ASSERT_NO_THROW(u = YAML::Load(seed->user_data)) << evil;
    EXPECT_EQ(Keys(u), (std::set<std::string>{"hostname", "fqdn", "manage_etc_hosts", "user", "password", "chpasswd",
                                              "ssh_pwauth", "users", "package_upgrade"}))
        << evil;
    EXPECT_EQ(u["user"].as<std::string>(), evil);
    EXPECT_EQ(u["password"].as<std::string>(), evil);
    EXPECT_EQ(u["hostname"].as<std::string>(), evil);
    YAML::Node m = YAML::Load(seed->meta_data);
    EXPECT_EQ(Keys(m), (std::set<std::string>{"instance-id", "local-hostname"})) << evil;
    YAML::Node n = YAML::Load(seed->network_config);
    EXPECT_EQ(n["config"].size(), 2u) << evil;
  }
}

TEST(CloudInit, EveryCharacterRoundTripsThroughTheYaml) {
  // Fuzzing found a ciuser with an emoji: JSON-style quoting wrote it as a UTF-16 surrogate
  // pair, which YAML reads as invalid code points, so cloud-init got no user-data at all.
  const std::vector<std::string> values = {
      "\f\f\U0001F600 +",       // the fuzz find: form feeds and a character above U+FFFF
      "\U0010FFFF\U00010000",    // the highest and lowest 4-byte characters
      "\x01\x1b[31m\x7f",         // C0 controls and DEL
      "\u0085\u009f\u00a0",       // C1 controls (not allowed raw in YAML) and NBSP
      "\u2028\u2029\ufeff\uffff",  // line/paragraph separators, BOM, a noncharacter
      "back\\slash \"quote\" \u00e9\u4e2d"};
  for (const auto& v : values) {
    auto c = Base();
    c["ciuser"] = v;
    c["cipassword"] = v;
    auto seed = RenderNoCloud(100, c);
    ASSERT_TRUE(seed) << v;
    for (char ch : seed->user_data)  // only escapes reach the file: nothing a YAML reader may refuse raw
      ASSERT_TRUE(ch == '\n' || (ch >= 0x20 && ch < 0x7f)) << v;
    YAML::Node u;
    ASSERT_NO_THROW(u = YAML::Load(seed->user_data)) << seed->user_data;
    EXPECT_EQ(u["user"].as<std::string>(), v);
    EXPECT_EQ(u["password"].as<std::string>(), v);
  }
}

TEST(CloudInit, BytesThatAreNotUtf8AreAnErrorNamingTheKey) {
  // A hand-edited config (the API refuses such values) reached the YAML quoting, which threw.
  auto c = Base();
  c["ciuser"] = "\xc1\xa9" "ch";
  auto seed = RenderNoCloud(100, c, {});
  ASSERT_FALSE(seed);
  EXPECT_EQ(seed.error().fields.at("ciuser"), "value must be valid UTF-8");
  c["ciuser"] = "j\xc3\xbcrgen";  // valid UTF-8 is kept as it is
  EXPECT_TRUE(RenderNoCloud(100, c, {}));
  c["description"] = "\xff";  // not rendered: no reason to refuse
  EXPECT_TRUE(RenderNoCloud(100, c, {}));
}

TEST(CloudInit, CustomSnippetsReplaceGeneratedParts) {
  auto seed = RenderNoCloud(100, Base(), {{"user", "#cloud-config\nruncmd: [[touch, /x]]\n"}, {"vendor", "v"}});
  ASSERT_TRUE(seed);
  EXPECT_EQ(seed->user_data, "#cloud-config\nruncmd: [[touch, /x]]\n");
  EXPECT_EQ(seed->vendor_data, "v");
  EXPECT_NE(seed->network_config.find("bc:24:11:00:00:01"), std::string::npos);
}

TEST(CloudInit, OnlyNoCloudForNow) {
  auto c = Base();
  c["citype"] = "configdrive2";
  auto r = RenderNoCloud(100, c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fields.count("citype"), 1u);
}

TEST(CloudInit, DriveKeyAndHelpers) {
  EXPECT_EQ(CloudInitDriveKey({{"ide2", "local:100/vm-100-cloudinit.qcow2,media=cdrom"}, {"scsi0", "local:100/vm-100-disk-0.qcow2"}}), "ide2");
  EXPECT_EQ(CloudInitDriveKey({{"ide2", "local:iso/x.iso,media=cdrom"}}), "");
  EXPECT_EQ(Ipv4Netmask(24), "255.255.255.0");
  EXPECT_EQ(Ipv4Netmask(0), "0.0.0.0");
  EXPECT_EQ(Ipv4Netmask(32), "255.255.255.255");
  EXPECT_EQ(DecodeSshKeys("a%0A%23comment%0A%0Ab"), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace hearth
