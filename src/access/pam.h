// Password checks for the `pam` realm: the host's own users, through PAM.
#pragma once

#include <string>

namespace hearth {

class PamAuthenticator {
 public:
  virtual ~PamAuthenticator() = default;
  virtual bool Authenticate(const std::string& user, const std::string& password) = 0;
};

// libpam with service name "hearth" (Debian falls back to /etc/pam.d/other, which includes
// common-auth). PAM's own failure delay is disabled: a slow failure would block an API
// thread, and the caller decides how to slow down guessing.
class LibPamAuthenticator final : public PamAuthenticator {
 public:
  explicit LibPamAuthenticator(std::string service = "hearth") : service_(std::move(service)) {}
  bool Authenticate(const std::string& user, const std::string& password) override;

 private:
  std::string service_;
};

}  // namespace hearth
