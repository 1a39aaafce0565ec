// Cloud-init inputs (ciuser, cipassword, sshkeys, name, searchdomain, nameserver, netN,
// ipconfigN) as the API accepts them, rendered to NoCloud YAML. Input: '\0'-separated
// "key=value" pairs (other keys are ignored). Invariant: no value changes the YAML's structure: each document parses,
// the top-level keys are the renderer's own, and values come back exactly as given.
#include <yaml-cpp/yaml.h>

#include <set>

#include "fuzz_common.h"
#include "model/cloudinit.h"
#include "model/vm_schema.h"

using namespace hearth;

namespace {

YAML::Node Load(const std::string& doc, const char* what) {
  try {
    return YAML::Load(doc);
  } catch (const YAML::Exception& e) {
    std::fprintf(stderr, "%s does not parse: %s\n---\n%s\n---\n", what, e.what(), doc.c_str());
    FUZZ_CHECK(false, "rendered YAML parses");
  }
  return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, std::string> config;
  for (const auto& pair : fuzz::Fields(fuzz::AsText(data, size), 16)) {
    size_t eq = pair.find('=');
    if (eq == std::string::npos) continue;
    std::string key = pair.substr(0, eq);
    if (!IsCloudInitKey(key) && key != "name" && key.rfind("net", 0) != 0) continue;
    auto canon = CanonicalVmValue(key, pair.substr(eq + 1));  // what the API would store
    if (canon) config[key] = *canon;
  }
  auto seed = RenderNoCloud(100, config);
  if (!seed) return 0;
  YAML::Node user = Load(seed->user_data, "user-data");
  FUZZ_CHECK(user.IsMap(), "user-data is a map");
  static const std::set<std::string> kTop = {"hostname", "fqdn", "manage_etc_hosts", "user", "password", "chpasswd",
                                             "ssh_pwauth", "ssh_authorized_keys", "users", "package_upgrade"};
  for (const auto& kv : user) FUZZ_CHECK(kTop.count(kv.first.as<std::string>()), "user-data keys are the renderer's");
  auto given = [&](const char* k) { return config.count(k) && !config[k].empty(); };  // "" means unset
  if (given("ciuser")) FUZZ_CHECK(user["user"].as<std::string>() == config["ciuser"], "user is kept exactly");
  if (given("cipassword"))
    FUZZ_CHECK(user["password"].as<std::string>() == config["cipassword"], "password is kept exactly");
  if (given("name")) FUZZ_CHECK(user["hostname"].as<std::string>() == config["name"], "hostname is kept exactly");
  auto keys = DecodeSshKeys(config.count("sshkeys") ? config["sshkeys"] : "");
  if (!keys.empty()) {
    FUZZ_CHECK(user["ssh_authorized_keys"].IsSequence() && user["ssh_authorized_keys"].size() == keys.size(),
               "one list entry per SSH key");
    for (size_t i = 0; i < keys.size(); ++i)
      FUZZ_CHECK(user["ssh_authorized_keys"][i].as<std::string>() == keys[i], "SSH keys are kept exactly");
  }
  YAML::Node net = Load(seed->network_config, "network-config");
  FUZZ_CHECK(net.IsMap() && net.size() == 2 && net["config"], "network-config has version and config only");
  YAML::Node meta = Load(seed->meta_data, "meta-data");
  FUZZ_CHECK(meta.IsMap() && meta.size() == 2, "meta-data has instance-id and local-hostname only");
  return 0;
}
