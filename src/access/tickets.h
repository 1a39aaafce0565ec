// Tickets and CSRF tokens in Proxmox's formats.
//
// Ticket: "PVE:<userid>:<HEXTIME>::<base64 signature>", signed with an Ed25519 key (PVE uses
// RSA; clients treat the signature as opaque). Valid from 300 s before to 7200 s after
// HEXTIME. CSRF token: "<HEXTIME>:<base64 HMAC-SHA256("<HEXTIME>:<userid>")>" (43 chars,
// no padding), same window.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"

namespace hearth {

constexpr int64_t kTicketLifetime = 7200;
constexpr int64_t kTicketClockSkew = 300;

class TicketAuthority {
 public:
  // `private_key_pem`: an Ed25519 private key; `csrf_secret`: random bytes.
  static Result<std::unique_ptr<TicketAuthority>> Create(const std::string& private_key_pem,
                                                         const std::string& csrf_secret);
  static Result<std::string> GenerateKeyPem();
  ~TicketAuthority();

  // The user id goes into the ticket with '%' and ':' percent-encoded, so that decoding it
  // gives back exactly the id that was signed (a name such as "%61dmin@pve" stays itself).
  std::string MakeTicket(const std::string& userid, int64_t now) const;
  struct Verified {
    std::string userid;
    int64_t issued = 0;  // unix seconds
  };
  // The user id and issue time if the signature is good, the ticket is within its lifetime
  // and the id is a valid user id. Fails with Unauthenticated otherwise.
  Result<Verified> VerifyTicket(const std::string& ticket, int64_t now) const;
  std::string MakeCsrfToken(const std::string& userid, int64_t now) const;
  bool VerifyCsrfToken(const std::string& token, const std::string& userid, int64_t now) const;

 private:
  TicketAuthority() = default;
  struct Keys;
  std::unique_ptr<Keys> keys_;
  std::string csrf_secret_;
};

}  // namespace hearth
