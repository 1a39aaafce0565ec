#include "access/access_service.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "access/passwords.h"
#include "access/userid.h"
#include "core/strings.h"
#include "sys/random_source.h"

namespace hearth {
namespace {

std::string Sha256Hex(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), sizeof md));
}

std::string RandomUuid() {
  unsigned char b[16];
  RandomFill(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  std::string h = HexEncode(std::string_view(reinterpret_cast<char*>(b), 16));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

bool IsAuditPrivilege(const std::string& p) { return EndsWith(p, ".Audit"); }

Error AuthFailure() { return Unauthenticated("authentication failure"); }

}  // namespace

const std::vector<std::string>& AllPrivileges() {
  static const std::vector<std::string> privs = {
      "Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
      "Group.Allocate", "Mapping.Audit", "Mapping.Modify", "Mapping.Use", "Permissions.Modify", "Pool.Allocate",
      "Pool.Audit", "Realm.Allocate", "Realm.AllocateUser", "SDN.Allocate", "SDN.Audit", "SDN.Use", "Sys.Audit",
      "Sys.AccessNetwork", "Sys.Console", "Sys.Incoming", "Sys.Modify", "Sys.PowerMgmt", "Sys.Syslog", "User.Modify", "VM.Allocate",
      "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit",
      "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options",
      "VM.Console", "VM.GuestAgent.Audit", "VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt",
      "VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted", "VM.Migrate", "VM.PowerMgmt", "VM.Replicate",
      "VM.Snapshot", "VM.Snapshot.Rollback"};
  return privs;
}

AccessService::AccessService(Store& store, const Clock& clock, const TicketAuthority& tickets, PamAuthenticator& pam)
    : store_(store), clock_(clock), tickets_(tickets), pam_(pam) {}

bool AccessService::IsValidUserId(const std::string& userid) {
  auto id = ParseUserId(userid);
  return id && (id->realm == "pve" || id->realm == "pam");
}

Result<UserRecord> AccessService::LookupUser(const std::string& userid) const {
  HEARTH_ASSIGN_OR_RETURN(auto user, store_.GetUser(userid));
  if (user) {
    if (!user->enabled) return Fail(AuthFailure());
    if (user->expire && user->expire < clock_.UnixSeconds()) return Fail(AuthFailure());
    return *user;
  }
  if (userid == "root@pam") return UserRecord{"root@pam", true, true, ""};
  return Fail(AuthFailure());
}

Identity AccessService::MakeIdentity(const UserRecord& user) const {
  Identity id;
  id.userid = user.userid;
  id.admin = user.admin || user.userid == "root@pam";
  return id;
}

Result<LoginResult> AccessService::Login(const std::string& username, const std::string& password,
                                         const std::string& realm) {
  std::string userid = username;
  if (userid.find('@') == std::string::npos && !realm.empty()) userid += "@" + realm;
  if (!IsValidUserId(userid)) return Fail(AuthFailure());
  HEARTH_ASSIGN_OR_RETURN(UserRecord user, LookupUser(userid));
  bool ok = false;
  if (StartsWith(password, "PVE:")) {
    // Ticket renewal: a valid ticket of the same user (root@pam may renew anyone's).
    auto owner = tickets_.VerifyTicket(password, clock_.UnixSeconds());
    ok = owner && (owner->userid == userid || owner->userid == "root@pam");
  } else if (EndsWith(userid, "@pve")) {
    ok = VerifyPassword(password, user.password_hash);
  } else {
    ok = pam_.Authenticate(ParseUserId(userid)->name, password);
  }
  if (!ok) return Fail(AuthFailure());
  LoginResult r;
  r.username = userid;
  int64_t now = clock_.UnixSeconds();
  r.ticket = tickets_.MakeTicket(userid, now);
  r.csrf_token = tickets_.MakeCsrfToken(userid, now);
  r.identity = MakeIdentity(user);
  r.identity.via_ticket = true;
  return r;
}

Result<LoginResult> AccessService::IssueLocalTicket(const std::string& userid) {
  if (!IsValidUserId(userid)) return Fail(FieldError("userid", InvalidUserIdMessage(userid)));
  HEARTH_ASSIGN_OR_RETURN(UserRecord user, LookupUser(userid));
  LoginResult r;
  r.username = userid;
  int64_t now = clock_.UnixSeconds();
  r.ticket = tickets_.MakeTicket(userid, now);
  r.csrf_token = tickets_.MakeCsrfToken(userid, now);
  r.identity = MakeIdentity(user);
  r.identity.via_ticket = true;
  return r;
}

std::optional<Identity> AccessService::Cached(const std::string& credential) {
  std::lock_guard lock(cache_mu_);
  auto it = cache_.find(credential);
  if (it == cache_.end()) return std::nullopt;
  if (it->second.expires <= clock_.UnixSeconds()) {
    cache_.erase(it);
    return std::nullopt;
  }
  return it->second.identity;
}

void AccessService::Remember(const std::string& credential, const Identity& id, int64_t expires) {
  std::lock_guard lock(cache_mu_);
  if (cache_.size() >= 10000) cache_.clear();  // bounded; misses only cost a re-check
  cache_[credential] = {id, expires};
}

Result<Identity> AccessService::FromTicket(const std::string& ticket) {
  std::string key = "ticket:" + ticket;
  if (auto id = Cached(key)) return *id;
  auto verified = tickets_.VerifyTicket(ticket, clock_.UnixSeconds());
  if (!verified) return Fail(Unauthenticated("invalid ticket"));
  HEARTH_ASSIGN_OR_RETURN(UserRecord user, LookupUser(verified->userid));
  Identity id = MakeIdentity(user);
  id.via_ticket = true;
  // Never past the ticket's own lifetime.
  Remember(key, id, std::min(clock_.UnixSeconds() + kCredentialCacheSeconds, verified->issued + kTicketLifetime));
  return id;
}

Result<Identity> AccessService::FromToken(const std::string& full, const std::string& secret) {
  // '\n' never occurs in a token id or secret, so the key is unambiguous.
  std::string key = "token:" + full + "\n" + secret;
  if (auto id = Cached(key)) return *id;
  auto parsed = ParseTokenId(full);
  if (!parsed || secret.size() > 256) return Fail(Unauthenticated("invalid token value"));
  HEARTH_ASSIGN_OR_RETURN(auto token, store_.GetToken(full));
  if (!token) return Fail(Unauthenticated("invalid token value"));
  std::string hash = Sha256Hex(secret);
  if (hash.size() != token->secret_hash.size() ||
      CRYPTO_memcmp(hash.data(), token->secret_hash.data(), hash.size()) != 0)
    return Fail(Unauthenticated("invalid token value"));
  if (token->expire && token->expire < clock_.UnixSeconds()) return Fail(Unauthenticated("token expired"));
  HEARTH_ASSIGN_OR_RETURN(UserRecord user, LookupUser(parsed->UserId()));
  Identity id = MakeIdentity(user);
  id.tokenid = parsed->token;
  int64_t expires = clock_.UnixSeconds() + kCredentialCacheSeconds;
  if (token->expire) expires = std::min(expires, token->expire);
  Remember(key, id, expires);
  return id;
}

bool AccessService::CheckCsrf(const Identity& who, const std::string& token) const {
  return tickets_.VerifyCsrfToken(token, who.userid, clock_.UnixSeconds());
}

bool AccessService::Allowed(const Identity& who, const std::string& path, const std::string& privilege) const {
  (void)path;  // ACL paths come with roles; today only the admin flag decides.
  return who.admin || IsAuditPrivilege(privilege);
}

bool AccessService::AllowedAny(const Identity& who, const std::string& path, const std::string& privileges) const {
  for (const auto& p : Split(privileges, '|'))
    if (Allowed(who, path, p)) return true;
  return false;
}

std::map<std::string, std::map<std::string, int>> AccessService::Permissions(const Identity& who) const {
  std::map<std::string, int> privs;
  for (const auto& p : AllPrivileges())
    if (Allowed(who, "/", p)) privs[p] = 1;
  return {{"/", privs}};
}

Status AccessService::AddUser(const std::string& userid, const std::string& password, bool admin, bool replace) {
  if (!IsValidUserId(userid)) {
    if (!ParseUserId(userid)) return Fail(FieldError("userid", InvalidUserIdMessage(userid)));
    return Fail(FieldError("userid", "domain '" + ParseUserId(userid)->realm + "' does not exist (realms: pve, pam)"));
  }
  if (!replace) {
    HEARTH_ASSIGN_OR_RETURN(auto existing, store_.GetUser(userid));
    if (existing) return Fail(AlreadyExists("user '" + userid + "' already exists"));
  }
  UserRecord u;
  u.userid = userid;
  u.admin = admin;
  if (EndsWith(userid, "@pve")) {
    HEARTH_ASSIGN_OR_RETURN(u.password_hash, HashPassword(password));
  } else if (!password.empty()) {
    return Fail(FieldError("password", "pam users authenticate against the host; do not give a password"));
  }
  return store_.PutUser(u);
}

Result<std::string> AccessService::AddToken(const std::string& full, const std::string& comment, bool replace) {
  auto parsed = ParseTokenId(full);
  if (!parsed || !IsValidUserId(parsed->UserId()))
    return Fail(FieldError("tokenid", "invalid token id '" + full +
                                          "' (want user@realm!name; the name starts with a letter and has at least "
                                          "2 characters: letters, digits, '.', '-', '_')"));
  std::string userid = parsed->UserId();
  HEARTH_ASSIGN_OR_RETURN(auto user, store_.GetUser(userid));
  if (!user && userid != "root@pam") return Fail(NotFound("user '" + userid + "' does not exist"));
  if (!replace) {
    HEARTH_ASSIGN_OR_RETURN(auto existing, store_.GetToken(full));
    if (existing) return Fail(FieldError("tokenid", "Token already exists."));
  }
  std::string secret = RandomUuid();
  HEARTH_TRY(store_.PutToken({full, userid, Sha256Hex(secret), 0, comment}));
  return secret;
}

Result<std::vector<UserRecord>> AccessService::ListUsers() {
  HEARTH_ASSIGN_OR_RETURN(auto users, store_.ListUsers());
  bool has_root = false;
  for (const auto& u : users) has_root |= u.userid == "root@pam";
  if (!has_root) users.insert(users.begin(), UserRecord{"root@pam", true, true, ""});
  return users;
}

Result<std::vector<TokenRecord>> AccessService::ListTokens(const std::string& userid) {
  return store_.ListTokens(userid);
}

}  // namespace hearth
