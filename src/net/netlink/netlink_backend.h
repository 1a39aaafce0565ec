#pragma once

#include "net/backend.h"

namespace hearth {

// Taps via /dev/net/tun (TUNSETIFF + TUNSETPERSIST), links via libnl-route (rtnetlink),
// bridge VLAN entries by NetlinkHostLinks, rate limits by tc_rate.h. Works inside whatever
// network namespace the daemon runs in.
class NetlinkBackend final : public NetBackend {
 public:
  Status CreateTap(const TapSpec& spec) override;
  Status PlugTap(const TapSpec& spec) override;
  Status UnplugTap(const std::string& name) override;
  Status SetTapRate(const std::string& name, double rate) override;
  Status DeleteTap(const std::string& name) override;
  Status CheckBridge(const std::string& bridge) override;
  Result<Counters> TapCounters(const std::string& name) override;
};

}  // namespace hearth
