// BackupKey: key files, the fingerprint, keyed chunk ids and AES-256-GCM sealing.
#include "backup/crypt_key.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "backup/chunk_store.h"

namespace hearth {
namespace {

// 32 bytes: "hearth test key: 32 bytes long!!"
constexpr const char* kKeyFile = R"({"kdf": null, "data": "aGVhcnRoIHRlc3Qga2V5OiAzMiBieXRlcyBsb25nISE="})";

TEST(BackupKeyTest, DerivationsNeverChangeForAKey) {
  // Backups made today must open with the same key years later: the derivations are pinned
  // to values computed independently (Python's hmac: HMAC-SHA256 of the labels).
  auto key = BackupKey::FromKeyFile(kKeyFile);
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->fingerprint(),
            "e8:f4:29:d9:e8:6c:e7:9a:b8:54:3b:bf:1a:ad:bd:7e:14:ce:8e:81:49:a4:e9:94:9d:13:9e:b2:85:6a:13:da");
  EXPECT_EQ(DigestHex(key->ChunkId("abc")), "76c8014873c543e2db8273770ac3ff134e8974ff7f88c96485e370bf32c5b800");
  EXPECT_NE(key->ChunkId("abc"), Sha256Digest("abc"));
  EXPECT_EQ(key->Sign("abc"), "956bc6d9b4735543e16b520134fcecc11ead45583cbacbf0e5306b64b89a74cc");
}

TEST(BackupKeyTest, GeneratedKeysDifferAndTheirKeyFilesRoundTrip) {
  auto a = BackupKey::Generate(), b = BackupKey::Generate();
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->fingerprint(), b->fingerprint());
  EXPECT_NE(a->ChunkId("same"), b->ChunkId("same"));
  std::string file = a->ToKeyFile(1764662400);
  auto j = nlohmann::json::parse(file);
  EXPECT_TRUE(j["kdf"].is_null());
  EXPECT_EQ(j["created"], "2025-12-02T08:00:00Z");
  EXPECT_EQ(j["fingerprint"], a->fingerprint());
  EXPECT_EQ(j["data"].get<std::string>().size(), 44u);  // base64 of 32 bytes
  auto back = BackupKey::FromKeyFile(file);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->fingerprint(), a->fingerprint());
  EXPECT_EQ(back->ChunkId("x"), a->ChunkId("x"));
}

TEST(BackupKeyTest, SealedDataOpensOnlyUnchangedWithItsKeyAndLabel) {
  auto key = *BackupKey::FromKeyFile(kKeyFile);
  auto other = *BackupKey::Generate();
  std::string plain = "memory: 512\nname: secret-vm\n";
  auto sealed = key.Seal(plain, "qemu-server.conf");
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->size(), plain.size() + BackupKey::kIvBytes + BackupKey::kTagBytes);
  EXPECT_EQ(sealed->find("secret-vm"), std::string::npos);
  EXPECT_NE(*key.Seal(plain, "qemu-server.conf"), *sealed);  // a fresh IV each time
  auto opened = key.Open(*sealed, "qemu-server.conf");
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(*opened, plain);
  // Every byte is covered: IV, tag and ciphertext.
  for (size_t i = 0; i < sealed->size(); ++i) {
    std::string bad = *sealed;
    bad[i] ^= 1;
    EXPECT_FALSE(key.Open(bad, "qemu-server.conf")) << "byte " << i;
  }
  EXPECT_FALSE(key.Open(*sealed, "notes"));  // the label is authenticated
  auto wrong = other.Open(*sealed, "qemu-server.conf");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "decryption failed (wrong key or modified data)");
  EXPECT_FALSE(key.Open(sealed->substr(0, 27), "qemu-server.conf"));
}

TEST(BackupKeyTest, WhatIsNotAKeyFileIsRefusedWithProxmoxsText) {
  const std::string not_a_key = "Value does not seems like a valid, JSON formatted encryption key!";
  for (const std::string& bad : std::vector<std::string>{"", "autogen", "{}", "[]", R"({"data": 5})", R"({"data": "c2hvcnQ="})",
                          R"({"data": "!!!not base64!!!"})", "{\"data\": \"" + std::string(5000, 'A') + "\"}"}) {
    auto k = BackupKey::FromKeyFile(bad);
    ASSERT_FALSE(k) << bad;
    EXPECT_EQ(k.error().message, not_a_key) << bad;
    EXPECT_EQ(k.error().code, ErrorCode::kInvalidArgument);
  }
  auto scrypt = BackupKey::FromKeyFile(R"({"kdf": {"Scrypt": {"n": 65536}}, "data": "aGVh"})");
  ASSERT_FALSE(scrypt);
  EXPECT_NE(scrypt.error().message.find("passphrase (kdf 'Scrypt')"), std::string::npos) << scrypt.error().message;
}

}  // namespace
}  // namespace hearth
