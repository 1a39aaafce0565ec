// Credentials from request headers: PVEAuthCookie tickets, CSRF tokens, API-token headers
// (PVEAPIToken=user@realm!id=secret) and the user, token and auth ids inside them.
// Invariant: nothing verifies that was not signed (a forged ticket is never accepted),
// and what does verify names a valid user id.
#include "access/tickets.h"
#include "access/userid.h"
#include "api/auth_header.h"
#include "fuzz_common.h"

using namespace hearth;

namespace {

const TicketAuthority& Authority() {
  static std::unique_ptr<TicketAuthority> a = [] {
    auto pem = TicketAuthority::GenerateKeyPem();
    FUZZ_CHECK(pem, "key generation");
    auto t = TicketAuthority::Create(*pem, std::string(32, 'k'));
    FUZZ_CHECK(t, "ticket authority");
    return std::move(*t);
  }();
  return *a;
}

constexpr int64_t kNow = 1767225600;  // 2026-01-01

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = fuzz::Fields(fuzz::AsText(data, size), 2);
  const std::string& header = f[0];
  for (const char* name : {"PVEAuthCookie", "PVEAPIToken"}) {
    auto value = ExtractAuthValue(header, name);
    if (!value) continue;
    for (const auto& cand : CredentialCandidates(*value)) {
      auto v = Authority().VerifyTicket(cand, kNow);
      FUZZ_CHECK(!v, "a ticket this authority never signed does not verify");
      size_t eq = cand.rfind('=');
      if (eq != std::string::npos) (void)ParseTokenId(cand.substr(0, eq));
    }
  }
  (void)Authority().VerifyCsrfToken(f[1], "root@pam", kNow);
  if (auto id = ParseAuthId(f[1])) {
    FUZZ_CHECK(ParseAuthId(id->Full()).has_value(), "an auth id prints back to a valid auth id");
    // A ticket for a valid user id round-trips.
    std::string ticket = Authority().MakeTicket(id->UserId(), kNow);
    auto v = Authority().VerifyTicket(ticket, kNow + 10);
    FUZZ_CHECK(v, "our own ticket verifies");
    FUZZ_CHECK(v->userid == id->UserId(), "a ticket names exactly the user it was made for");
    FUZZ_CHECK(Authority().VerifyCsrfToken(Authority().MakeCsrfToken(id->UserId(), kNow), id->UserId(), kNow + 10),
               "our own CSRF token verifies");
  }
  (void)ParseUserId(f[1]);
  (void)InvalidUserIdMessage(f[1]);
  return 0;
}
