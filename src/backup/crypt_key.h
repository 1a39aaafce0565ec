// BackupKey: the key of an encrypted datastore (issue 10, "optional client-side encryption").
// One 32-byte secret, from which three keys are derived (HMAC-SHA256 of fixed labels), so the
// one never serves both purposes:
//   - the chunk-id key: an encrypted store names a chunk by HMAC-SHA256(id key, content)
//     instead of SHA-256(content), so a copy of the store (a NAS, a USB disk, another hearth)
//     says nothing about what it holds, not even whether it holds a known file;
//   - the signing key: an HMAC over each backup's manifest (Proxmox Backup Server signs its
//     manifests the same way), so the plain index files it lists cannot be swapped;
//   - the encryption key: AES-256-GCM with a random 96-bit IV per message (NIST SP 800-38D's
//     limit of 2^32 messages per key is 16 PiB of 4 MiB chunks), the header authenticated as
//     additional data.
// The fingerprint ("aa:bb:…", 32 bytes as Proxmox Backup Server prints its own) identifies the
// key without revealing it: it is recorded in every backup's manifest and in the storage
// config, so a restore with another key fails before it writes anything.
//
// The key file is Proxmox Backup Server's JSON shape for `--kdf none` (what Proxmox VE's
// `encryption-key autogen` makes): {"kdf": null, "created", "modified", "data": base64 of the
// 32 bytes, "fingerprint"}. hearth computes fingerprints its own way and does not read PBS's
// chunk format, so a PBS key file is accepted as a secret but its fingerprint is recomputed.
// Passphrase-protected key files (kdf scrypt/pbkdf2) are refused: backups run unattended.
//
// Thread-safety: an immutable value; every method is safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth {

class BackupKey {
 public:
  static constexpr size_t kIvBytes = 12, kTagBytes = 16;
  static constexpr size_t kMaxKeyFile = 4096;  // longer input is refused before parsing

  // 32 bytes from the OpenSSL CSPRNG.
  static Result<BackupKey> Generate();
  // Parses a key file (hostile input: bounded, checked). Errors (kInvalidArgument):
  // "Value does not seems like a valid, JSON formatted encryption key!" (Proxmox's text) for
  // anything that is not a JSON object with 32 bytes of base64 `data`; a text naming the kdf
  // for passphrase-protected files.
  static Result<BackupKey> FromKeyFile(std::string_view text);
  // The key file, `created`/`modified` as RFC 3339 UTC of `created_unix`.
  std::string ToKeyFile(int64_t created_unix) const;

  const std::string& fingerprint() const { return fingerprint_; }
  // HMAC-SHA256(chunk-id key, data): the name of a chunk in an encrypted store.
  std::array<uint8_t, 32> ChunkId(std::string_view data) const;
  // HMAC-SHA256(manifest key, data) as 64 hex digits: the signature of a backup's manifest,
  // so that files, checksums and crypt modes cannot be changed by whoever holds the store.
  std::string Sign(std::string_view data) const;
  // iv | tag | ciphertext of `plain`, `aad` authenticated alongside.
  Result<std::string> Seal(std::string_view plain, std::string_view aad) const;
  // The plain text of what Seal made with this key and `aad`. Fails if anything
  // was changed or another key made it (kInternal): "decryption failed (wrong key or modified data)".
  Result<std::string> Open(std::string_view sealed, std::string_view aad) const;

 private:
  explicit BackupKey(const std::array<uint8_t, 32>& secret);
  std::array<uint8_t, 32> secret_{}, id_key_{}, enc_key_{}, sign_key_{};
  std::string fingerprint_;
};

}  // namespace hearth
