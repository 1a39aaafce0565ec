// Rate limits on a link with Linux traffic control, through libnl-route (rtnetlink):
// an HTB qdisc (handle 1:, default class 1:1) with one class 1:1 at `bytes_per_sec`,
// ceil the same, burst `burst` bytes, as PVE::Network::setup_tc_rate_limit makes them; and a
// redirect of a link's ingress to another link's egress (an ingress qdisc ffff: with a
// match-all u32 filter at priority 50 whose action is mirred egress redirect), which is how
// the traffic a guest sends gets shaped by an HTB on an ifb device.
//
// Errors name what the kernel lacks (sch_htb, sch_ingress, cls_u32, act_mirred, ifb).
// Thread-safety: each call opens its own netlink socket.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace hearth {

// Replaces the link's root qdisc with the HTB above.
Status SetHtbRate(const std::string& link, uint64_t bytes_per_sec, uint32_t burst);
// Redirects everything `link` receives to the egress of `to` (replacing its ingress qdisc).
Status RedirectIngress(const std::string& link, const std::string& to);
// Removes the root and ingress qdiscs (back to the kernel's defaults); missing ones are fine.
Status ClearTc(const std::string& link);
// Creates an ifb device named `name` (up), or keeps the one that exists.
Status EnsureIfb(const std::string& name);

}  // namespace hearth
