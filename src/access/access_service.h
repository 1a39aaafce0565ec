// AccessService: who is calling, and may they do this.
//
// Realms: `pve` (hearth's own users, yescrypt hashes in the store) and `pam` (host users
// through PAM; root@pam is always known and is an administrator). Credentials are a ticket
// (from Login) or an API token. Allowed() is the single authorization function every API
// call passes; today a user is an administrator (every privilege) or not (read-only, the
// Audit privileges). Roles and ACLs replace its body later without touching callers.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <memory>
#include <string>
#include <vector>

#include "access/pam.h"
#include "access/tickets.h"
#include "core/result.h"
#include "state/store.h"
#include "sys/clock.h"

namespace hearth {

struct Identity {
  std::string userid;   // "root@pam"
  std::string tokenid;  // token name, or "" for a ticket
  bool admin = false;
  bool via_ticket = false;  // ticket requests need a CSRF token for writes
  std::string AuthId() const { return tokenid.empty() ? userid : userid + "!" + tokenid; }
  // root@pam itself, not its API tokens: PVE's `$authuser eq 'root@pam'` checks (root-only
  // config keys, skiplock, host paths) compare the auth id, so tokens never pass them.
  bool IsRootAtPam() const { return tokenid.empty() && userid == "root@pam"; }
};

constexpr int64_t kCredentialCacheSeconds = 10;

struct LoginResult {
  std::string username, ticket, csrf_token;
  Identity identity;
};

// Proxmox privilege names (the ones clients check for).
const std::vector<std::string>& AllPrivileges();

class AccessService {
 public:
  AccessService(Store& store, const Clock& clock, const TicketAuthority& tickets, PamAuthenticator& pam);

  // `password` may also be a valid ticket for the same user (ticket renewal).
  Result<LoginResult> Login(const std::string& username, const std::string& password, const std::string& realm);
  // A ticket for an existing, enabled user without a password: for root on the host only
  // (the local `hearth ticket` verb, which needs the data dir's signing key anyway), like
  // pvesh acting as root@pam on a Proxmox node.
  Result<LoginResult> IssueLocalTicket(const std::string& userid);
  Result<Identity> FromTicket(const std::string& ticket);
  // "user@realm!name" and its secret.
  Result<Identity> FromToken(const std::string& full_tokenid, const std::string& secret);
  bool CheckCsrf(const Identity& who, const std::string& token) const;

  bool Allowed(const Identity& who, const std::string& path, const std::string& privilege) const;
  // `privileges` is one name or several joined by '|': true if any of them is allowed
  // (Proxmox's `any => 1`).
  bool AllowedAny(const Identity& who, const std::string& path, const std::string& privileges) const;
  // path -> privilege -> 1, as /access/permissions and the login `cap` need.
  std::map<std::string, std::map<std::string, int>> Permissions(const Identity& who) const;

  // Local admin verbs (also used by the API later).
  // An existing user or token is refused (PVE's "user '<id>' already exists",
  // "Token already exists.") unless `replace` is set.
  Status AddUser(const std::string& userid, const std::string& password, bool admin, bool replace = false);
  // Returns the secret; it is shown once and only its hash is stored.
  Result<std::string> AddToken(const std::string& full_tokenid, const std::string& comment, bool replace = false);
  Result<std::vector<UserRecord>> ListUsers();
  Result<std::vector<TokenRecord>> ListTokens(const std::string& userid);

  static bool IsValidUserId(const std::string& userid);

 private:
  Result<UserRecord> LookupUser(const std::string& userid) const;
  Identity MakeIdentity(const UserRecord& user) const;
  std::optional<Identity> Cached(const std::string& credential);
  void Remember(const std::string& credential, const Identity& id, int64_t expires);

  struct CachedIdentity {
    Identity identity;
    int64_t expires = 0;
  };
  std::mutex cache_mu_;
  std::unordered_map<std::string, CachedIdentity> cache_;  // GUARDED_BY(cache_mu_)

  Store& store_;
  const Clock& clock_;
  const TicketAuthority& tickets_;
  PamAuthenticator& pam_;
};

}  // namespace hearth
