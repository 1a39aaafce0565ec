#include "access/pam.h"

#include <security/pam_appl.h>

#include <cstdlib>
#include <cstring>

namespace hearth {
namespace {

struct Credentials {
  const std::string* password;
};

int Converse(int n, const pam_message** msgs, pam_response** resp, void* data) {
  auto* creds = static_cast<Credentials*>(data);
  auto* out = static_cast<pam_response*>(calloc(n, sizeof(pam_response)));
  if (!out) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    if (msgs[i]->msg_style == PAM_PROMPT_ECHO_OFF || msgs[i]->msg_style == PAM_PROMPT_ECHO_ON)
      out[i].resp = strdup(creds->password->c_str());
  }
  *resp = out;
  return PAM_SUCCESS;
}

void NoDelay(int, unsigned, void*) {}

}  // namespace

bool LibPamAuthenticator::Authenticate(const std::string& user, const std::string& password) {
  Credentials creds{&password};
  pam_conv conv{Converse, &creds};
  pam_handle_t* h = nullptr;
  if (pam_start(service_.c_str(), user.c_str(), &conv, &h) != PAM_SUCCESS) return false;
  pam_set_item(h, PAM_FAIL_DELAY, reinterpret_cast<const void*>(&NoDelay));
  int rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
  if (rc == PAM_SUCCESS) rc = pam_acct_mgmt(h, PAM_SILENT);
  pam_end(h, rc);
  return rc == PAM_SUCCESS;
}

}  // namespace hearth
