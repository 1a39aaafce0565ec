// The verbs every job area of the CLI has (snapshot schedules, backup jobs): list, add, set,
// show, remove and run against one API collection.
#include <CLI/CLI.hpp>
#include <memory>

#include "cli/client_context.h"
#include "sys/console.h"

namespace hearth {

void AddJobVerbs(CLI::App* parent, const ClientContext& ctx, const JobVerbs& spec) {
  // What CLI11 fills during the parse; the callbacks keep it alive.
  struct State {
    std::string id;
    std::vector<std::string> kvs;
  };
  auto st = std::make_shared<State>();
  const std::string base = spec.base;
  auto columns = spec.list_columns;

  parent->add_subcommand("list", "List " + spec.plural)->callback([ctx, base, columns] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto r = api.Call("GET", base);
      if (!r) return ReportError(r.error());
      PrintList(*r, columns);
      return 0;
    });
  });
  // Sends key=value parameters (plus the id for a create) and reports only failures.
  auto send = [ctx, st](const std::string& method, const std::string& path, bool with_id) {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto p = ParseKeyValues(st->kvs);
      if (!p) return ReportError(p.error());
      if (with_id) p->emplace_back("id", st->id);
      auto r = api.Call(method, path, *p);
      return r ? 0 : ReportError(r.error());
    });
  };
  auto* add = parent->add_subcommand("add", spec.add_help);
  add->add_option("id", st->id)->required();
  add->add_option("params", st->kvs, spec.params_help);
  add->callback([send, base] { send("POST", base, true); });
  auto* set = parent->add_subcommand("set", spec.set_help);
  set->add_option("id", st->id)->required();
  set->add_option("params", st->kvs, "any of add's, and delete=<comma list> to unset options")->required();
  set->callback([send, base, st] { send("PUT", base + "/" + st->id, false); });
  auto* show = parent->add_subcommand("show", "Show one");
  show->add_option("id", st->id)->required();
  show->callback([ctx, base, st] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto r = api.Call("GET", base + "/" + st->id);
      if (!r) return ReportError(r.error());
      PrintKeyValues(*r);
      return 0;
    });
  });
  auto* remove = parent->add_subcommand("remove", spec.remove_help);
  remove->add_option("id", st->id)->required();
  remove->callback([ctx, base, st] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      auto r = api.Call("DELETE", base + "/" + st->id);
      return r ? 0 : ReportError(r.error());
    });
  });
  auto* run = parent->add_subcommand("run", "Run one now and follow its task");
  run->add_option("id", st->id)->required();
  run->callback([ctx, base, st] {
    ctx.with_api([&](ApiClient& api, const std::string&) {
      return ctx.task_or_print(api, api.Call("POST", base + "/" + st->id + "/run"));
    });
  });
}

}  // namespace hearth
