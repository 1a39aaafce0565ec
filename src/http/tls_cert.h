// The daemon's self-signed TLS certificate, made at first start (ECDSA P-256, 10 years,
// subjectAltName = node name, localhost, 127.0.0.1). Key file mode 0600.
#pragma once

#include <string>

#include "core/result.h"
#include "sys/file_system.h"

namespace hearth {

Status EnsureSelfSignedCertificate(FileSystem& fs, const std::string& cert_path, const std::string& key_path,
                                   const std::string& hostname);
// "AB:CD:..." SHA-256 fingerprint of the PEM certificate (/nodes ssl_fingerprint).
Result<std::string> CertificateFingerprint(const std::string& cert_path);
// The same notation for a digest: upper-case hex bytes joined by ':'.
std::string FormatFingerprint(const unsigned char* digest, unsigned length);

}  // namespace hearth
