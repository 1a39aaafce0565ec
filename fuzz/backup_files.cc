// What a backup datastore reads from disk (and, with offsite sync, from another node): fixed
// indexes, chunk blobs (plain, and encrypted under a fixed key) and snapshot names and key
// files. Invariants: a decoded index encodes back to the same bytes; a decoded chunk has the
// digest it was asked for; a parsed snapshot name prints back to the same text; a key file
// that parses prints to one that parses to the same key.
#include "backup/chunk_store.h"
#include "backup/datastore.h"
#include "backup/fixed_index.h"
#include "fuzz_common.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = fuzz::AsText(data, size);
  if (auto idx = DecodeFixedIndex(in)) FUZZ_CHECK(EncodeFixedIndex(*idx) == in, "an index encodes back to its bytes");
  if (auto id = BackupSnapshotId::Parse(in)) FUZZ_CHECK(id->Name() == in, "a snapshot name prints back");
  // A blob checked against the digest of its own first 32 bytes' claim (mostly a mismatch;
  // the corpus holds real blobs whose digest prefix matches).
  if (in.size() >= 32) {
    ChunkDigest d{};
    std::copy(in.begin(), in.begin() + 32, d.begin());
    if (auto content = ChunkStore::DecodeBlob(d, in.substr(32), nullptr))
      FUZZ_CHECK(Sha256Digest(*content) == d, "a decoded chunk matches its digest");
    static const BackupKey key = *BackupKey::FromKeyFile(R"({"kdf":null,"data":"aGVhcnRoIGZ1enoga2V5LCBiYWNrdXAgYmxvYnMhISE="})");
    if (auto content = ChunkStore::DecodeBlob(d, in.substr(32), &key))
      FUZZ_CHECK(key.ChunkId(*content) == d || Sha256Digest(*content) == d, "a decrypted chunk matches its digest");
  }
  if (auto key = BackupKey::FromKeyFile(in)) {
    auto again = BackupKey::FromKeyFile(key->ToKeyFile(0));
    FUZZ_CHECK(again && again->fingerprint() == key->fingerprint(), "a key file prints to the same key");
  }
  return 0;
}
