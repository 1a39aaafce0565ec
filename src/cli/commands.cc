#include "cli/commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/api_client.h"
#include "cli/client_context.h"
#include "cli/output.h"
#include "cli/trust.h"
#include "core/strings.h"
#include "model/upid.h"
#include "sys/console.h"
#include "sys/files.h"
#include "sys/posix/posix_file_system.h"

namespace hearth {
namespace {

struct Global {
  std::string url;
  std::string node;
  std::string fingerprint;
  bool insecure = false;
};

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string SessionPath() {
  std::string explicit_path = Env("HEARTH_SESSION");
  if (!explicit_path.empty()) return explicit_path;
  return Env("HOME", "/root") + "/.config/hearth/session.json";
}

constexpr const char* kDefaultUrl = "https://127.0.0.1:8006";

// Two spellings of one server URL compare equal ("https://Host:8006/" and "https://host:8006").
std::string CanonicalUrl(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return ToLower(url);
}

Result<std::unique_ptr<ApiClient>> Connect(const Global& g) {
  Credentials creds;
  creds.token = Env("HEARTH_TOKEN");
  std::string url = g.url;
  if (!creds.token.empty()) {
    // user@realm!tokenid=secret, checked here so that a typo is not sent to the server.
    size_t at = creds.token.find('@'), bang = creds.token.find('!'), eq = creds.token.find('=');
    bool printable = std::all_of(creds.token.begin(), creds.token.end(),
                                 [](unsigned char c) { return c > 0x20 && c < 0x7f; });  // no spaces, no CR/LF
    if (!printable || at == std::string::npos || bang == std::string::npos || eq == std::string::npos ||
        !(at < bang && bang < eq) || at == 0 || eq + 1 == creds.token.size())
      return Fail(InvalidArgument("HEARTH_TOKEN must look like user@realm!tokenid=secret (as `hearth token add` prints it)"));
    if (url.empty()) url = kDefaultUrl;
    creds.hint_401 = "the server refused HEARTH_TOKEN: check the token id and secret";
  } else {
    std::string session_url;
    nlohmann::json session;
    if (auto text = ReadFile(SessionPath())) {
      session = nlohmann::json::parse(*text, nullptr, false);
      if (session.is_object()) session_url = session.value("url", "");
    }
    if (url.empty()) url = session_url.empty() ? kDefaultUrl : session_url;
    // A ticket goes only to the server that issued it: another URL gets no credentials.
    if (!session_url.empty() && CanonicalUrl(session_url) == CanonicalUrl(url)) {
      creds.ticket = session.value("ticket", "");
      creds.csrf = session.value("csrf", "");
      creds.hint_401 = "the ticket has expired or was refused: log in again with `hearth --url " + url + " login`";
    } else {
      creds.hint_401 = "not logged in to " + url + ": run `hearth --url " + url + " login`, or set HEARTH_TOKEN";
    }
  }
  HEARTH_ASSIGN_OR_RETURN(auto http, HttpsClient::Connect(url, CliTrust(g.insecure, g.fingerprint)));
  return std::make_unique<ApiClient>(std::move(http), creds);
}

Result<std::string> NodeName(ApiClient& api, const Global& g) {
  if (!g.node.empty()) return g.node;
  HEARTH_ASSIGN_OR_RETURN(auto nodes, api.Call("GET", "/nodes"));
  if (!nodes.is_array() || nodes.empty()) return Fail(Internal("the server reports no nodes"));
  return nodes[0].value("node", "");
}


// Waits for a task, showing its log as it grows; exit code 0 only if it ended OK.
int FollowTask(ApiClient& api, const std::string& upid, bool quiet = false) {
  if (!quiet) std::cerr << "task " << upid << "\n";
  auto status = api.WaitTask(upid, [&](const std::string& line) {
    if (!quiet) std::cerr << "  " << line << "\n";
  });
  if (!status) return ReportError(status.error());
  if (*status == "OK" || StartsWith(*status, "WARNINGS")) {
    if (!quiet) std::cerr << "done: " << *status << "\n";
    return 0;
  }
  std::cerr << "task failed: " << *status << "\n";
  return 1;
}

int PrintResult(const Result<nlohmann::json>& r) {
  if (!r) return ReportError(r.error());
  if (r->is_string()) std::cout << r->get<std::string>() << "\n";
  else std::cout << r->dump(2) << "\n";
  return 0;
}

}  // namespace

Result<KeyValues> ParseKeyValues(const std::vector<std::string>& args) {
  KeyValues out;
  for (const auto& a : args) {
    size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) return Fail(InvalidArgument("expected key=value, got '" + a + "'"));
    out.emplace_back(a.substr(0, eq), a.substr(eq + 1));
  }
  return out;
}

void AddClientCommands(CLI::App& app, int& rc) {
  static Global g;
  app.add_option("--url", g.url, "Server URL (default $HEARTH_URL or https://127.0.0.1:8006)")->envname("HEARTH_URL");
  app.add_option("--node", g.node, "Node name (default: the server's first node)")->envname("HEARTH_NODE");
  app.add_option("--fingerprint", g.fingerprint, "Trust only the server certificate with this SHA-256 fingerprint")
      ->envname("HEARTH_FINGERPRINT");
  app.add_flag("--insecure", g.insecure, "Do not check the server's certificate at all (tests only)");
  static std::string output = "text";
  app.add_option("--output,-o", output, "text (tables for people) or json (the API's data, for scripts)")
      ->envname("HEARTH_OUTPUT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.parse_complete_callback([] { SetOutputFormat(output); });
  // Option storage must outlive this function: CLI11 fills it during parse.
  static std::vector<std::string> kvs;
  static int vmid = 0;
  static bool no_wait = false;

  // ---- login
  auto* login = app.add_subcommand("login", "Log in and keep a ticket in ~/.config/hearth/session.json");
  static std::string login_user = "root@pam";
  static bool login_stdin = false;
  login->add_option("--user", login_user)->capture_default_str();
  login->add_flag("--password-stdin", login_stdin);
  login->callback([&] {
    std::string url = g.url.empty() ? kDefaultUrl : g.url;
    auto http = HttpsClient::Connect(url, CliTrust(g.insecure, g.fingerprint));
    if (!http) return void(rc = ReportError(http.error()));
    ApiClient api(std::move(*http), {});
    // Settle trust in the server (and ask about its certificate) before the password is typed.
    if (auto probe = api.Call("GET", "/access/domains"); !probe) return void(rc = ReportError(probe.error()));
    std::string pw = ReadSecret(login_stdin, "Password for " + login_user + ": ");
    auto r = api.Call("POST", "/access/ticket", {{"username", login_user}, {"password", pw}});
    if (!r) return void(rc = ReportError(r.error()));
    nlohmann::json session = {{"url", url}, {"username", (*r)["username"]}, {"ticket", (*r)["ticket"]},
                              {"csrf", (*r)["CSRFPreventionToken"]}};
    std::string path = SessionPath();
    (void)MakeDirs(path.substr(0, path.rfind('/')), 0700);
    PosixFileSystem fs;
    if (auto st = WriteFileAtomic(fs, path, session.dump(), 0600); !st) return void(rc = ReportError(st.error()));
    std::cerr << "logged in as " << login_user << " (ticket valid for 2 hours)\n";
  });

  // ---- api (like pvesh)
  auto* api_cmd = app.add_subcommand("api", "Call any API path, like pvesh: hearth api get /nodes");
  static std::string method, path;
  api_cmd->add_option("method", method)->required()->check(CLI::IsMember({"get", "post", "put", "delete", "create", "set"}));
  api_cmd->add_option("path", path)->required();
  api_cmd->add_option("params", kvs, "key=value ...");
  static bool api_wait = false;
  api_cmd->add_flag("--wait", api_wait, "If the result is a task, follow it to the end");
  api_cmd->callback([&] {
    auto api = Connect(g);
    if (!api) return void(rc = ReportError(api.error()));
    auto params = ParseKeyValues(kvs);
    if (!params) return void(rc = ReportError(params.error()));
    std::string m = method == "create" ? "POST" : method == "set" ? "PUT" : ToUpper(method);
    auto r = (*api)->Call(m, path, *params);
    rc = PrintResult(r);
    if (rc == 0 && api_wait && r->is_string() && StartsWith(r->get<std::string>(), "UPID:"))
      rc = FollowTask(**api, r->get<std::string>());
  });

  // ---- vm
  auto* vm = app.add_subcommand("vm", "Virtual machines");
  vm->require_subcommand(1);
  static auto with_api = [&rc](const std::function<int(ApiClient&, const std::string&)>& fn) {
    auto api = Connect(g);
    if (!api) return void(rc = ReportError(api.error()));
    auto node = NodeName(**api, g);
    if (!node) return void(rc = ReportError(node.error()));
    rc = fn(**api, *node);
  };
  static auto task_or_print = [](ApiClient& api, const Result<nlohmann::json>& r) {
    if (!r) return ReportError(r.error());
    if (r->is_string() && StartsWith(r->get<std::string>(), "UPID:")) {
      if (no_wait) {
        std::cout << r->get<std::string>() << "\n";
        return 0;
      }
      return FollowTask(api, r->get<std::string>());
    }
    return 0;
  };

  AddSnapshotCommands(app, ClientContext{with_api, task_or_print});
  AddReplicateCommands(app, ClientContext{with_api, task_or_print});
  AddBackupCommands(app, ClientContext{with_api, task_or_print});
  AddNetCommands(app, ClientContext{with_api, task_or_print});

  vm->add_subcommand("list", "List VMs")->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/qemu");
      if (!r) return ReportError(r.error());
      std::sort(r->begin(), r->end(), [](const auto& a, const auto& b) { return a["vmid"] < b["vmid"]; });
      // What `qm list` shows, in units people read.
      PrintList(*r, {{"vmid"}, {"name"}, {"status"}, {"cpus"}, {"maxmem", "mem", CellFormat::kBytes},
                     {"maxdisk", "disk", CellFormat::kBytes}, {"uptime", "", CellFormat::kDuration}, {"pid"}, {"tags"}});
      return 0;
    });
  });

  auto* vm_create = vm->add_subcommand("create", "Create a VM: hearth vm create 100 memory=512 scsi0=local:4 net0=virtio");
  static bool start_after = false;
  static std::string storage_opt;
  vm_create->add_option("vmid", vmid)->required();
  vm_create->add_option("config", kvs, "key=value ...");
  vm_create->add_flag("--start", start_after, "Start it once created");
  vm_create->add_option("--storage", storage_opt, "Default storage for new disks");
  vm_create->add_flag("--no-wait", no_wait, "Print the task id instead of following it");
  vm_create->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      auto params = ParseKeyValues(kvs);
      if (!params) return ReportError(params.error());
      params->emplace_back("vmid", std::to_string(vmid));
      if (start_after) params->emplace_back("start", "1");
      if (!storage_opt.empty()) params->emplace_back("storage", storage_opt);
      return task_or_print(api, api.Call("POST", "/nodes/" + node + "/qemu", *params));
    });
  });

  for (const auto& action : {"start", "stop", "shutdown", "reboot", "reset", "suspend", "resume"}) {
    auto* c = vm->add_subcommand(action, std::string(action) + " a VM");
    c->add_option("vmid", vmid)->required();
    c->add_option("params", kvs, "key=value ... (e.g. timeout=60 forceStop=1)");
    c->add_flag("--no-wait", no_wait, "Print the task id instead of following it");
    std::string a = action;
    c->callback([&, a] {
      with_api([&](ApiClient& api, const std::string& node) {
        auto params = ParseKeyValues(kvs);
        if (!params) return ReportError(params.error());
        return task_or_print(api, api.Call("POST", "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/status/" + a, *params));
      });
    });
  }

  auto* vm_template = vm->add_subcommand("template", "Convert a stopped VM into a template");
  vm_template->add_option("vmid", vmid)->required();
  vm_template->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      return task_or_print(api, api.Call("POST", "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/template"));
    });
  });

  auto* vm_clone = vm->add_subcommand("clone", "Clone a VM: hearth vm clone 9000 101 name=web1 [full=1 storage=local format=qcow2]");
  static int newid = 0;
  vm_clone->add_option("vmid", vmid)->required();
  vm_clone->add_option("newid", newid)->required();
  vm_clone->add_option("params", kvs, "name=, full=1, storage=, format=, description=");
  vm_clone->add_flag("--no-wait", no_wait);
  vm_clone->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      auto params = ParseKeyValues(kvs);
      if (!params) return ReportError(params.error());
      params->emplace_back("newid", std::to_string(newid));
      return task_or_print(api, api.Call("POST", "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/clone", *params));
    });
  });

  auto* vm_resize = vm->add_subcommand("resize", "Grow a disk: hearth vm resize 101 scsi0 +10G");
  static std::string disk, size;
  vm_resize->add_option("vmid", vmid)->required();
  vm_resize->add_option("disk", disk)->required();
  vm_resize->add_option("size", size, "absolute (20G) or relative (+10G)")->required();
  vm_resize->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      return task_or_print(api, api.Call("PUT", "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/resize",
                                         {{"disk", disk}, {"size", size}}));
    });
  });

  auto* vm_agent = vm->add_subcommand("agent", "Ask the guest agent: hearth vm agent 101 get-osinfo | exec -- cmd args");
  static std::string agent_cmd;
  static std::vector<std::string> agent_args;
  vm_agent->add_option("vmid", vmid)->required();
  vm_agent->add_option("command", agent_cmd, "ping, info, get-osinfo, get-host-name, network-get-interfaces, exec, ...")->required();
  vm_agent->add_option("args", agent_args, "for exec: the program and its arguments");
  vm_agent->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      std::string base = "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/agent/";
      if (agent_cmd == "exec") {
        KeyValues params;
        for (const auto& a : agent_args) params.emplace_back("command", a);
        auto started = api.Call("POST", base + "exec", params);
        if (!started) return ReportError(started.error());
        std::string pid = std::to_string((*started)["pid"].get<int64_t>());
        while (true) {
          auto st = api.Call("GET", base + "exec-status", {{"pid", pid}});
          if (!st) return ReportError(st.error());
          if ((*st)["exited"] == 1) {
            std::cout << st->value("out-data", "");
            std::cerr << st->value("err-data", "");
            return static_cast<int>(st->value("exitcode", 1));
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
      }
      bool post = agent_cmd == "ping" || StartsWith(agent_cmd, "fsfreeze") || agent_cmd == "fstrim" ||
                  agent_cmd == "shutdown" || StartsWith(agent_cmd, "suspend");
      return PrintResult(api.Call(post ? "POST" : "GET", base + agent_cmd));
    });
  });

  auto* vm_destroy = vm->add_subcommand("destroy", "Destroy a VM and its disks");
  vm_destroy->add_option("vmid", vmid)->required();
  vm_destroy->add_flag("--no-wait", no_wait);
  vm_destroy->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      return task_or_print(api, api.Call("DELETE", "/nodes/" + node + "/qemu/" + std::to_string(vmid),
                                         {{"purge", "1"}, {"destroy-unreferenced-disks", "1"}}));
    });
  });

  auto* vm_config = vm->add_subcommand("config", "Show, or change with key=value (delete=key), a VM's config");
  vm_config->add_option("vmid", vmid)->required();
  vm_config->add_option("changes", kvs, "key=value ...");
  vm_config->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      std::string p = "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/config";
      if (kvs.empty()) {
        auto r = api.Call("GET", p);
        if (!r) return ReportError(r.error());
        PrintKeyValues(*r);
        return 0;
      }
      auto params = ParseKeyValues(kvs);
      if (!params) return ReportError(params.error());
      auto r = api.Call("PUT", p, *params);
      if (!r) return ReportError(r.error());
      std::cerr << "updated\n";
      return 0;
    });
  });

  auto* vm_status = vm->add_subcommand("status", "Show a VM's current status");
  vm_status->add_option("vmid", vmid)->required();
  vm_status->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/status/current");
      if (!r) return ReportError(r.error());
      PrintKeyValues(*r);
      return 0;
    });
  });

  auto* vm_serial = vm->add_subcommand("serial", "Show what the guest wrote to serial0 (needs serial0=socket)");
  static bool follow = false;
  static std::string until;
  static int timeout_s = 0;
  vm_serial->add_option("vmid", vmid)->required();
  vm_serial->add_flag("-f,--follow", follow, "Keep printing new output");
  vm_serial->add_option("--until", until, "With --follow: stop once this text appears (exit 0)");
  vm_serial->add_option("--timeout", timeout_s, "With --follow: give up after this many seconds (exit 1)");
  vm_serial->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      uint64_t offset = 0;
      std::string seen;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s > 0 ? timeout_s : 1000000);
      while (true) {
        auto r = api.Call("GET", "/nodes/" + node + "/qemu/" + std::to_string(vmid) + "/serial-log",
                          {{"offset", std::to_string(offset)}});
        if (!r) return ReportError(r.error());
        std::string text = (*r)["text"];
        std::cout << text << std::flush;
        offset = (*r)["offset"];
        if (!until.empty()) {
          seen += text;
          if (seen.find(until) != std::string::npos) return 0;
          if (seen.size() > 65536) seen.erase(0, seen.size() - 4096);
        }
        if (!follow) return 0;
        if (std::chrono::steady_clock::now() > deadline) {
          std::cerr << "\ntimed out waiting" << (until.empty() ? "" : " for '" + until + "'") << "\n";
          return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    });
  });

  // ---- image
  auto* image = app.add_subcommand("image", "Cloud-init-ready template images");
  image->require_subcommand(1);
  auto* image_build = image->add_subcommand(
      "build", "Build a Debian image as template VMID: hearth image build 9000 name=debian12 packages=htop timezone=Europe/Berlin");
  image_build->add_option("vmid", vmid)->required();
  image_build->add_option("params", kvs, "name=, packages=, locale=, keyboard=, timezone=, ssh-port=, disk-size=, storage=, memory=, cores=, bridge=");
  image_build->add_flag("--no-wait", no_wait);
  image_build->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      auto params = ParseKeyValues(kvs);
      if (!params) return ReportError(params.error());
      params->emplace_back("vmid", std::to_string(vmid));
      return task_or_print(api, api.Call("POST", "/nodes/" + node + "/hearth/images", *params));
    });
  });
  image->add_subcommand("list", "Cached images")->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/hearth/images");
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"hash"}, {"size", "", CellFormat::kBytes}, {"ctime", "built", CellFormat::kTime}});
      if (!JsonOutput())
        for (const auto& img : *r) std::cout << img["hash"].get<std::string>() << ":\n" << img["recipe"].get<std::string>();
      return 0;
    });
  });

  // ---- task
  auto* task = app.add_subcommand("task", "Tasks");
  task->require_subcommand(1);
  static std::string upid;
  static int limit = 20;
  auto* task_list = task->add_subcommand("list", "Recent tasks");
  task_list->add_option("--limit", limit)->capture_default_str();
  task_list->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/tasks", {{"limit", std::to_string(limit)}});
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"starttime", "started", CellFormat::kTime}, {"type"}, {"id"}, {"user"}, {"status"}, {"upid"}});
      return 0;
    });
  });
  auto* task_log = task->add_subcommand("log", "Print a task's log");
  task_log->add_option("upid", upid)->required();
  task_log->callback([&] {
    with_api([&](ApiClient& api, const std::string&) {
      auto u = ParseUpid(upid);
      if (!u) return ReportError(u.error());
      auto r = api.Call("GET", "/nodes/" + u->node + "/tasks/" + PercentEncode(upid) + "/log", {{"limit", "0"}});
      if (!r) return ReportError(r.error());
      for (const auto& l : *r) std::cout << l.value("t", "") << "\n";
      return 0;
    });
  });
  auto* task_wait = task->add_subcommand("wait", "Follow a task to its end");
  task_wait->add_option("upid", upid)->required();
  task_wait->callback([&] { with_api([&](ApiClient& api, const std::string&) { return FollowTask(api, upid); }); });

  // ---- storage
  auto* storage = app.add_subcommand("storage", "Storage");
  storage->require_subcommand(1);
  storage->add_subcommand("list", "Storages and their usage")->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      auto r = api.Call("GET", "/nodes/" + node + "/storage");
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"storage"}, {"type"}, {"content"}, {"enabled"}, {"active"}, {"total", "", CellFormat::kBytes},
                     {"used", "", CellFormat::kBytes}, {"avail", "", CellFormat::kBytes}});
      return 0;
    });
  });
  auto* content = storage->add_subcommand("content", "Volumes on a storage");
  static std::string storage_id = "local", content_type, file, name;
  content->add_option("storage", storage_id)->capture_default_str();
  content->add_option("--content", content_type, "images, iso, snippets, ...");
  content->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      KeyValues params;
      if (!content_type.empty()) params.emplace_back("content", content_type);
      auto r = api.Call("GET", "/nodes/" + node + "/storage/" + storage_id + "/content", params);
      if (!r) return ReportError(r.error());
      PrintList(*r, {{"volid"}, {"content"}, {"format"}, {"size", "", CellFormat::kBytes}, {"vmid"}});
      return 0;
    });
  });
  auto* dl = storage->add_subcommand("download-url", "Download an ISO or cloud image into a storage: hearth storage download-url URL name.qcow2 --content import");
  static std::string dl_url, dl_name, dl_content = "iso", dl_checksum, dl_algo = "sha256";
  static bool dl_insecure = false;
  dl->add_option("url", dl_url)->required();
  dl->add_option("filename", dl_name)->required();
  dl->add_option("--storage", storage_id)->capture_default_str();
  dl->add_option("--content", dl_content, "iso, import or vztmpl")->capture_default_str();
  dl->add_option("--checksum", dl_checksum);
  dl->add_option("--checksum-algorithm", dl_algo)->capture_default_str();
  dl->add_flag("--no-verify-certificates", dl_insecure, "The daemon does not verify the download server's certificate");
  dl->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      KeyValues p = {{"url", dl_url}, {"filename", dl_name}, {"content", dl_content}};
      if (!dl_checksum.empty()) {
        p.emplace_back("checksum", dl_checksum);
        p.emplace_back("checksum-algorithm", dl_algo);
      }
      if (dl_insecure) p.emplace_back("verify-certificates", "0");
      return task_or_print(api, api.Call("POST", "/nodes/" + node + "/storage/" + storage_id + "/download-url", p));
    });
  });

  auto* upload = storage->add_subcommand("upload", "Upload an ISO, snippet or import image");
  static std::string upload_content = "iso";
  upload->add_option("file", file)->required()->check(CLI::ExistingFile);
  upload->add_option("--storage", storage_id)->capture_default_str();
  upload->add_option("--content", upload_content)->capture_default_str();
  upload->add_option("--name", name, "File name on the storage (default: the file's name)");
  upload->callback([&] {
    with_api([&](ApiClient& api, const std::string& node) {
      std::string target = name.empty() ? file.substr(file.rfind('/') + 1) : name;
      auto r = api.Upload("/nodes/" + node + "/storage/" + storage_id + "/upload", {{"content", upload_content}},
                          "filename", target, file);
      if (!r) return ReportError(r.error());
      return FollowTask(api, r->get<std::string>());
    });
  });

}

}  // namespace hearth
