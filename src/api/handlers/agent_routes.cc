// /nodes/{node}/qemu/{vmid}/agent/*: the guest agent, as PVE exposes it.
#include "api/handlers/handlers.h"
#include "core/strings.h"

namespace hearth {
namespace {

int Vmid(const ApiContext& c) { return static_cast<int>(c.params.Int("vmid")); }

ApiReply Wrapped(const nlohmann::json& ret) { return Data({{"result", ret}}); }

// PVE's simple agent commands and the HTTP method each is registered with.
struct Simple {
  const char* name;
  const char* method;
  const char* privilege;
};
const Simple kSimple[] = {
    {"ping", "POST", "VM.GuestAgent.Audit"},          {"info", "GET", "VM.GuestAgent.Audit"},
    {"network-get-interfaces", "GET", "VM.GuestAgent.Audit"}, {"get-osinfo", "GET", "VM.GuestAgent.Audit"},
    {"get-host-name", "GET", "VM.GuestAgent.Audit"},  {"get-fsinfo", "GET", "VM.GuestAgent.Audit"},
    {"get-time", "GET", "VM.GuestAgent.Audit"},       {"get-timezone", "GET", "VM.GuestAgent.Audit"},
    {"get-users", "GET", "VM.GuestAgent.Audit"},      {"get-vcpus", "GET", "VM.GuestAgent.Audit"},
    {"get-memory-blocks", "GET", "VM.GuestAgent.Audit"}, {"get-memory-block-info", "GET", "VM.GuestAgent.Audit"},
    {"fsfreeze-status", "POST", "VM.GuestAgent.Audit"}, {"fsfreeze-freeze", "POST", "VM.GuestAgent.FileSystemMgmt"},
    {"fsfreeze-thaw", "POST", "VM.GuestAgent.FileSystemMgmt"}, {"fstrim", "POST", "VM.GuestAgent.FileSystemMgmt"},
    {"suspend-disk", "POST", "VM.PowerMgmt"},         {"suspend-ram", "POST", "VM.PowerMgmt"},
    {"suspend-hybrid", "POST", "VM.PowerMgmt"},
};

// Members of an agent's reply. The guest is untrusted: any member may be missing or of
// another type (nlohmann's value() would throw), and the reply may not be an object.
const nlohmann::json* Member(const nlohmann::json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}
int64_t IntMember(const nlohmann::json& o, const char* key, int64_t fallback = 0) {
  const auto* v = Member(o, key);
  return v && v->is_number_integer() ? v->get<int64_t>() : fallback;
}
bool BoolMember(const nlohmann::json& o, const char* key, bool fallback) {
  const auto* v = Member(o, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}
std::string B64Member(const nlohmann::json& o, const char* key) {
  const auto* v = Member(o, key);
  if (!v || !v->is_string()) return "";
  return Base64Decode(v->get<std::string>()).value_or("");
}

}  // namespace

void RegisterAgentRoutes(Router& r, ApiServices& s) {
  size_t first = r.routes().size();
  const std::string vm_path = "/vms/{vmid}";
  for (const auto& cmd : kSimple) {
    std::string name = cmd.name;
    r.Add({cmd.method, "/nodes/{node}/qemu/{vmid}/agent/" + name, {NodeParam(), VmidParam()}, false, cmd.privilege,
           vm_path, true, true, false,
           [&s, name](ApiContext& c) -> Result<ApiReply> {
             HEARTH_ASSIGN_OR_RETURN(auto ret, s.vms.AgentCommand(Vmid(c), "guest-" + name));
             return Wrapped(ret);
           },
           "Guest agent: guest-" + name + "."});
  }

  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/agent/shutdown", {NodeParam(), VmidParam()}, false, "VM.PowerMgmt",
         vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           // guest-shutdown never replies: the guest just goes away.
           HEARTH_TRY(s.vms.AgentCommand(Vmid(c), "guest-shutdown", nullptr, std::chrono::seconds(5), false));
           return Wrapped(nlohmann::json::object());
         },
         "Guest agent: shut the guest down."});

  ParamSpec command = Required(PString("command", "The program and its arguments (repeat the key per argument)."));
  command.repeatable = true;
  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/agent/exec", {NodeParam(), VmidParam(), command, PString("input-data")},
         false, "VM.GuestAgent.Unrestricted", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::vector<std::string> argv = c.params.GetAll("command");
           if (argv.size() == 1 && argv[0].find(' ') != std::string::npos && argv[0][0] != '/')
             argv = SplitAny(argv[0], " ");  // older clients send one string
           if (argv.empty()) return Fail(FieldError("command", "no command given"));
           nlohmann::json args = {{"path", argv[0]}, {"capture-output", true}};
           args["arg"] = std::vector<std::string>(argv.begin() + 1, argv.end());
           if (auto in = c.params.Get("input-data")) args["input-data"] = Base64Encode(*in);
           HEARTH_ASSIGN_OR_RETURN(auto ret, s.vms.AgentCommand(Vmid(c), "guest-exec", args));
           return Data({{"pid", IntMember(ret, "pid")}});
         },
         "Guest agent: run a program in the guest; poll exec-status with the returned pid."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status", {NodeParam(), VmidParam(), Required(PInt("pid", 0))},
         false, "VM.GuestAgent.Unrestricted", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto ret, s.vms.AgentCommand(Vmid(c), "guest-exec-status", {{"pid", c.params.Int("pid")}}));
           nlohmann::json out = {{"exited", BoolMember(ret, "exited", false) ? 1 : 0}};
           if (Member(ret, "exitcode")) out["exitcode"] = IntMember(ret, "exitcode");
           if (Member(ret, "signal")) out["signal"] = IntMember(ret, "signal");
           if (Member(ret, "out-data")) out["out-data"] = B64Member(ret, "out-data");
           if (Member(ret, "err-data")) out["err-data"] = B64Member(ret, "err-data");
           if (BoolMember(ret, "out-truncated", false)) out["out-truncated"] = 1;
           if (BoolMember(ret, "err-truncated", false)) out["err-truncated"] = 1;
           return Data(out);
         },
         "Guest agent: status and output of a program started with exec."});

  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/agent/file-read", {NodeParam(), VmidParam(), Required(PString("file"))},
         false, "VM.GuestAgent.FileRead", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           int vmid = Vmid(c);
           HEARTH_ASSIGN_OR_RETURN(auto handle, s.vms.AgentCommand(vmid, "guest-file-open", {{"path", *c.params.Get("file")}, {"mode", "r"}}));
           std::string content;
           bool truncated = false;
           constexpr size_t kMax = 16 << 20;
           while (true) {
             auto chunk = s.vms.AgentCommand(vmid, "guest-file-read", {{"handle", handle}, {"count", 1 << 20}});
             if (!chunk) {
               (void)s.vms.AgentCommand(vmid, "guest-file-close", {{"handle", handle}});
               return Fail(chunk.error());
             }
             content += B64Member(*chunk, "buf-b64");
             if (BoolMember(*chunk, "eof", true)) break;
             if (content.size() >= kMax) {
               truncated = true;
               break;
             }
           }
           (void)s.vms.AgentCommand(vmid, "guest-file-close", {{"handle", handle}});
           nlohmann::json out = {{"content", content}};
           if (truncated) out["truncated"] = 1;
           return Data(out);
         },
         "Guest agent: read a file (up to 16 MiB)."});

  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/agent/file-write",
         {NodeParam(), VmidParam(), Required(PString("file")), MaxLen(Required(PString("content")), 61440), PBool("encode")}, false,
         "VM.GuestAgent.FileWrite", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           int vmid = Vmid(c);
           std::string content = *c.params.Get("content");
           // encode=1 (default): content is plain text and we encode it; 0: already base64.
           std::string b64 = c.params.Bool("encode", true) ? Base64Encode(content) : content;
           if (!c.params.Bool("encode", true) && !Base64Decode(b64))
             return Fail(FieldError("content", "not valid base64 (encode=0)"));
           HEARTH_ASSIGN_OR_RETURN(auto handle, s.vms.AgentCommand(vmid, "guest-file-open", {{"path", *c.params.Get("file")}, {"mode", "w"}}));
           auto w = s.vms.AgentCommand(vmid, "guest-file-write", {{"handle", handle}, {"buf-b64", b64}});
           (void)s.vms.AgentCommand(vmid, "guest-file-close", {{"handle", handle}});
           if (!w) return Fail(w.error());
           return Data(nullptr);
         },
         "Guest agent: write a file."});

  r.Add({"POST", "/nodes/{node}/qemu/{vmid}/agent/set-user-password",
         {NodeParam(), VmidParam(), Required(PString("username")), Required(PString("password")), PBool("crypted")},
         false, "VM.GuestAgent.Unrestricted", vm_path, true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto ret, s.vms.AgentCommand(Vmid(c), "guest-set-user-password",
                                                               {{"username", *c.params.Get("username")},
                                                                {"password", Base64Encode(*c.params.Get("password"))},
                                                                {"crypted", c.params.Bool("crypted")}}));
           return Wrapped(ret);
         },
         "Guest agent: set a user's password."});
  // Every agent call waits on the guest (seconds when its agent hangs): the wait pool.
  for (size_t i = first; i < r.routes().size(); ++i) r.MutableRoute(i).lane = Lane::kWait;
}

}  // namespace hearth
