// How the CLI decides to trust a server's TLS certificate (HttpsClient's TlsTrust), like
// ssh: a pinned fingerprint (--fingerprint / HEARTH_FINGERPRINT) wins; a certificate that
// verifies against the system's CAs is trusted; otherwise the fingerprint must be in the
// known-hosts file (~/.config/hearth/known_hosts, or HEARTH_KNOWN_HOSTS), and at a terminal
// an unknown one is shown and the user asked to accept it (it is then remembered). A changed
// fingerprint is refused loudly. `insecure` (--insecure / HEARTH_INSECURE=1) trusts anything.
#pragma once

#include <string>

#include "http/https_client.h"

namespace hearth {

std::string KnownHostsPath();
TlsTrust CliTrust(bool insecure, const std::string& fingerprint);

}  // namespace hearth
