#include "access/userid.h"
#include "api/handlers/handlers.h"
#include "core/strings.h"

namespace hearth {
namespace {

// The login `cap` map: privileges grouped by area, values numeric 1 (bpg asserts numbers).
nlohmann::json Capabilities(const AccessService& access, const Identity& who) {
  nlohmann::json cap = nlohmann::json::object();
  for (const auto& area : {"vms", "storage", "access", "nodes", "dc", "sdn", "mapping"}) cap[area] = nlohmann::json::object();
  for (const auto& [path, privs] : access.Permissions(who)) {
    for (const auto& [p, v] : privs) {
      std::string area = StartsWith(p, "VM.") ? "vms" : StartsWith(p, "Datastore.") ? "storage"
                       : StartsWith(p, "Sys.") ? "nodes" : StartsWith(p, "SDN.") ? "sdn"
                       : StartsWith(p, "Mapping.") ? "mapping"
                       : (StartsWith(p, "User.") || StartsWith(p, "Group.") || StartsWith(p, "Realm.") ||
                          StartsWith(p, "Permissions."))
                           ? "access" : "dc";
      cap[area][p] = 1;
    }
  }
  return cap;
}

nlohmann::json UserJson(const UserRecord& u, const std::vector<TokenRecord>* tokens) {
  nlohmann::json j = {{"userid", u.userid}, {"enable", u.enabled ? 1 : 0}, {"expire", u.expire}};
  if (!u.email.empty()) j["email"] = u.email;
  if (!u.firstname.empty()) j["firstname"] = u.firstname;
  if (!u.lastname.empty()) j["lastname"] = u.lastname;
  if (!u.comment.empty()) j["comment"] = u.comment;
  j["realm-type"] = EndsWith(u.userid, "@pam") ? "pam" : "pve";
  if (tokens) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& t : *tokens)
      if (auto id = ParseTokenId(t.tokenid)) list.push_back({{"tokenid", id->token}, {"expire", t.expire}, {"privsep", 0}});
    j["tokens"] = list;
  }
  return j;
}

}  // namespace

void RegisterAccessRoutes(Router& r, ApiServices& s) {
  auto& ticket = r.Add({"POST", "/access/ticket",
         {MaxLen(Required(PString("username")), 64), MaxLen(Required(PString("password")), 4096), MaxLen(PString("realm"), 32),
          PString("otp"), PString("tfa-challenge"), MaxLen(PString("path"), 256), PString("privs"), PBool("new-format")},
         false, "", "", /*needs_auth=*/false, /*allow_token=*/false, /*csrf_exempt=*/true,
         [&s](ApiContext& c) -> Result<ApiReply> {
           auto login = s.access.Login(*c.params.Get("username"), *c.params.Get("password"), c.params.GetOr("realm", ""));
           if (!login) return Fail(Unauthenticated("authentication failure"));
           if (c.params.Has("path") && c.params.Has("privs")) {
             // PVE's verify_auth: only answers whether the credentials carry the privileges;
             // no new ticket, and any failure is an authentication failure.
             for (const auto& p : SplitAny(*c.params.Get("privs"), ",; "))
               if (!s.access.Allowed(login->identity, *c.params.Get("path"), p))
                 return Fail(Unauthenticated("authentication failure"));
             return Data({{"username", login->username}, {"cap", Capabilities(s.access, login->identity)}});
           }
           return Data({{"username", login->username},
                        {"ticket", login->ticket},
                        {"CSRFPreventionToken", login->csrf_token},
                        {"cap", Capabilities(s.access, login->identity)}});
         },
         "Create or verify an authentication ticket."});
  ticket.lane = Lane::kLogin;  // password hashing (and PAM) take tens of milliseconds

  r.Add({"GET", "/access/ticket", {}, false, "", "", false, true, true,
         [](ApiContext&) -> Result<ApiReply> { return Data(nullptr); }, "Dummy, for the login form."});

  r.Add({"GET", "/access/domains", {}, false, "", "", false, true, true,
         [](ApiContext&) -> Result<ApiReply> {
           return Data(nlohmann::json::array({{{"realm", "pam"}, {"type", "pam"}, {"comment", "Linux PAM standard authentication"}},
                                              {{"realm", "pve"}, {"type", "pve"}, {"comment", "hearth authentication server"}, {"default", 1}}}));
         },
         "Authentication realms."});

  r.Add({"GET", "/access/users", {PBool("full"), PBool("enabled")}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           HEARTH_ASSIGN_OR_RETURN(auto users, s.access.ListUsers());
           bool full = c.params.Bool("full");
           // PVE: everyone with User.Modify or Sys.Audit on /access/groups, else only oneself.
           bool all = s.access.AllowedAny(*c.who, "/access/groups", "User.Modify|Sys.Audit");
           nlohmann::json out = nlohmann::json::array();
           for (const auto& u : users) {
             if (!all && u.userid != c.who->userid) continue;
             if (c.params.Has("enabled") && c.params.Bool("enabled") != u.enabled) continue;
             std::vector<TokenRecord> tokens;
             if (full) tokens = s.access.ListTokens(u.userid).value_or(std::vector<TokenRecord>{});
             out.push_back(UserJson(u, full ? &tokens : nullptr));
           }
           return Data(out);
         },
         "List users."});

  r.Add({"GET", "/access/users/{userid}", {Required(PString("userid"))}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           std::string id = *c.params.Get("userid");
           if (!ParseUserId(id)) return Fail(FieldError("userid", InvalidUserIdMessage(id)));
           HEARTH_ASSIGN_OR_RETURN(auto users, s.access.ListUsers());
           for (const auto& u : users) {
             if (u.userid != id) continue;
             // PVE's userid-group check: User.Modify or Sys.Audit (no exception for oneself).
             if (!s.access.AllowedAny(*c.who, "/access/groups", "User.Modify|Sys.Audit"))
               return Fail(PermissionDenied("Permission check failed"));
             auto tokens = s.access.ListTokens(id).value_or(std::vector<TokenRecord>{});
             return Data(UserJson(u, &tokens));
           }
           return Fail(Internal("no such user ('" + id + "')"));
         },
         "Get user configuration."});

  r.Add({"GET", "/access/permissions", {PString("userid"), PString("path")}, false, "", "", true, true, false,
         [&s](ApiContext& c) -> Result<ApiReply> {
           Identity who = *c.who;
           if (auto uid = c.params.Get("userid"); uid && *uid != who.AuthId()) {
             auto target = ParseAuthId(*uid);
             if (!target) return Fail(FieldError("userid", "invalid format - value '" + *uid + "' does not look like a valid user name\n"));
             // PVE: another user's (or token's) permissions need Sys.Audit on /access, except
             // a user asking about one of its own tokens.
             bool own_token = who.tokenid.empty() && !target->token.empty() && target->UserId() == who.userid;
             if (!own_token && !s.access.Allowed(who, "/access", "Sys.Audit"))
               return Fail(PermissionDenied("Permission check failed (/access, Sys.Audit)"));
             auto users = s.access.ListUsers();
             bool found = false;
             if (users)
               for (const auto& u : *users)
                 if (u.userid == target->UserId()) {
                   who = Identity{u.userid, target->token, u.admin || u.userid == "root@pam", false};
                   found = true;
                 }
             if (!found) return Fail(Internal("no such user ('" + *uid + "')"));
           }
           nlohmann::json out = nlohmann::json::object();
           if (auto path = c.params.Get("path")) {
             // The privileges at that one path.
             std::map<std::string, int> privs;
             for (const auto& p : AllPrivileges())
               if (s.access.Allowed(who, *path, p)) privs[p] = 1;
             out[*path] = privs;
             return Data(out);
           }
           for (const auto& [path, privs] : s.access.Permissions(who)) out[path] = privs;
           return Data(out);
         },
         "The effective permissions of a user or token."});
}

}  // namespace hearth
