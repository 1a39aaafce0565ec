// `hearth net`: the node's host network through /nodes/{node}/network (pending edits, the
// diff, apply with a confirm window, confirm, revert).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <ctime>
#include <iostream>

#include "cli/client_context.h"
#include "cli/output.h"
#include "sys/console.h"

namespace hearth {

void AddNetCommands(CLI::App& app, const ClientContext& ctx) {
  static std::string iface, type_filter;
  static std::vector<std::string> kvs;
  static int confirm_timeout = -1;

  auto* net = app.add_subcommand("net", "Host network: bridges, bonds, vlans, addresses (pending until applied)");
  net->require_subcommand(1);

  auto* list = net->add_subcommand("list", "Interfaces (the pending configuration), and whether changes are pending");
  list->add_option("--type", type_filter, "bridge, bond, eth, vlan, any_bridge");
  list->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p;
      if (!type_filter.empty()) p.emplace_back("type", type_filter);
      auto r = api.CallEnvelope("GET", "/nodes/" + node + "/network", p);
      if (!r) return ReportError(r.error());
      auto items = (*r)["data"];
      std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a["iface"] < b["iface"]; });
      PrintList(items, {{"iface"}, {"type"}, {"active"}, {"autostart"}, {"cidr"}, {"cidr6"}, {"gateway"},
                        {"bridge_ports", "PORTS"}, {"slaves"}, {"mtu"}, {"comments"}});
      if (!JsonOutput()) {
        if (r->contains("changes")) std::cout << "\nPending changes (hearth net apply, or hearth net revert):\n";
        if (r->contains("hearth-confirm")) {
          auto& w = (*r)["hearth-confirm"];
          std::cout << "\nApplied by " << w.value("user", "") << ", waiting for confirmation ("
                    << w.value("deadline", int64_t{0}) - static_cast<int64_t>(std::time(nullptr))
                    << " s left): hearth net confirm\n";
        }
      }
      return 0;
    });
  });

  auto* changes = net->add_subcommand("changes", "The pending changes as a diff");
  changes->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.CallEnvelope("GET", "/nodes/" + node + "/network");
      if (!r) return ReportError(r.error());
      std::cout << (r->contains("changes") ? (*r)["changes"].get<std::string>() : "no pending changes\n");
      return 0;
    });
  });

  auto* show = net->add_subcommand("show", "One interface's configuration");
  show->add_option("iface", iface)->required();
  show->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/network/" + iface);
      if (!r) return ReportError(r.error());
      PrintKeyValues(*r);
      return 0;
    });
  });

  auto* add = net->add_subcommand(
      "add", "Add an interface: hearth net add vmbr1 type=bridge bridge_ports=eth1 cidr=10.0.0.1/24 (up at apply "
             "and start unless autostart=0)");
  add->add_option("iface", iface)->required();
  add->add_option("params", kvs, "type=bridge|bond|vlan, bridge_ports=, bridge_vlan_aware=1, bridge_vids=, slaves=, "
                                 "bond_mode=, vlan-raw-device=, vlan-id=, cidr=, gateway=, cidr6=, gateway6=, mtu=, "
                                 "autostart=0|1 (default 1, unlike the API's 0), comments=");
  add->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto p = ParseKeyValues(kvs);
      if (!p) return ReportError(p.error());
      p->emplace_back("iface", iface);
      // The GUI's Create dialog ticks autostart; so does the CLI (the API's default is off).
      if (std::none_of(p->begin(), p->end(), [](const auto& kv) { return kv.first == "autostart"; }))
        p->emplace_back("autostart", "1");
      auto r = api.Call("POST", "/nodes/" + node + "/network", *p);
      if (!r) return ReportError(r.error());
      std::cout << "added " << iface << " (pending: hearth net apply)\n";
      return 0;
    });
  });

  auto* set = net->add_subcommand(
      "set", "Change an interface: hearth net set vmbr1 cidr=10.0.0.2/24 [delete=gateway] [adopt=1]");
  set->add_option("iface", iface)->required();
  set->add_option("params", kvs, "the options of add, delete=<keys>, adopt=1 (take over an interface hearth "
                                 "did not create)");
  set->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto p = ParseKeyValues(kvs);
      if (!p) return ReportError(p.error());
      // PUT needs the type: take it from the current configuration unless given.
      bool has_type = false;
      for (const auto& [k, v] : *p) has_type = has_type || k == "type";
      if (!has_type) {
        auto cur = api.Call("GET", "/nodes/" + node + "/network/" + iface);
        if (!cur) return ReportError(cur.error());
        if (cur->contains("type")) p->emplace_back("type", (*cur)["type"].get<std::string>());
      }
      auto r = api.Call("PUT", "/nodes/" + node + "/network/" + iface, *p);
      if (!r) return ReportError(r.error());
      std::cout << "changed " << iface << " (pending: hearth net apply)\n";
      return 0;
    });
  });

  auto* rm = net->add_subcommand("rm", "Remove an interface (pending; one hearth did not create is released)");
  rm->add_option("iface", iface)->required();
  rm->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("DELETE", "/nodes/" + node + "/network/" + iface);
      if (!r) return ReportError(r.error());
      std::cout << "removed " << iface << " (pending: hearth net apply)\n";
      return 0;
    });
  });

  auto* apply = net->add_subcommand("apply", "Apply the pending configuration; confirm it within the timeout "
                                             "(this command does, when it can still reach the node)");
  apply->add_option("--confirm-timeout", confirm_timeout, "Seconds before an unconfirmed change goes back (default "
                                                         "120; 0: no confirm window)");
  apply->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p;
      if (confirm_timeout >= 0) p.emplace_back("confirm-timeout", std::to_string(confirm_timeout));
      auto r = api.Call("PUT", "/nodes/" + node + "/network", p);
      int rc = ctx.task_or_print(api, r);
      if (rc != 0) return rc;
      // Reaching the node again after the apply is the proof it is still reachable.
      auto c = api.Call("POST", "/nodes/" + node + "/network/confirm");
      if (c) std::cout << "confirmed: the node is reachable with the new configuration\n";
      return 0;
    });
  });

  net->add_subcommand("confirm", "Keep the configuration applied last (ends its confirm window)")->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("POST", "/nodes/" + node + "/network/confirm");
      if (!r) return ReportError(r.error());
      std::cout << "confirmed\n";
      return 0;
    });
  });

  net->add_subcommand("revert", "Drop the pending changes")->callback([ctx] {
    ctx.with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("DELETE", "/nodes/" + node + "/network");
      if (!r) return ReportError(r.error());
      std::cout << "pending network changes dropped\n";
      return 0;
    });
  });
}

}  // namespace hearth
