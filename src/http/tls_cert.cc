#include "http/tls_cert.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>

#include "sys/files.h"
#include "sys/random_source.h"

namespace hearth {
namespace {

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, len);
}

}  // namespace

Status EnsureSelfSignedCertificate(FileSystem& fs, const std::string& cert_path, const std::string& key_path,
                                   const std::string& hostname) {
  if (fs.Exists(cert_path) && fs.Exists(key_path)) return Ok();
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!key) return Fail(Internal("cannot generate TLS key"));
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  unsigned char serial[16];
  RandomFill(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("hearth"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(hostname.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  std::string san = "DNS:" + hostname + ",DNS:localhost,IP:127.0.0.1";
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  if (ext) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());

  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, cert);
  std::string key_pem = BioString(kb), cert_pem = BioString(cb);
  BIO_free(kb);
  BIO_free(cb);
  X509_free(cert);
  EVP_PKEY_free(key);
  HEARTH_TRY(WriteFileAtomic(fs, key_path, key_pem, 0600));
  return WriteFileAtomic(fs, cert_path, cert_pem, 0644);
}

Result<std::string> CertificateFingerprint(const std::string& cert_path) {
  HEARTH_ASSIGN_OR_RETURN(std::string pem, ReadFile(cert_path));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) return Fail(Internal("cannot read certificate '" + cert_path + "'"));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert, EVP_sha256(), md, &n);
  X509_free(cert);
  return FormatFingerprint(md, n);
}

std::string FormatFingerprint(const unsigned char* digest, unsigned length) {
  std::string out;
  char buf[4];
  for (unsigned i = 0; i < length; ++i) {
    std::snprintf(buf, sizeof buf, i ? ":%02X" : "%02X", digest[i]);
    out += buf;
  }
  return out;
}

}  // namespace hearth
