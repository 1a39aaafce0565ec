// What a backup datastore reads from disk (and, with offsite sync, from another node): fixed
// indexes, chunk blobs (plain, and encrypted under a fixed key), manifests, snapshot names and
// key files. Invariants: a decoded index encodes back to the same bytes; a decoded chunk has the
// digest it was asked for; a parsed snapshot name prints back to the same text; a key file
// that parses prints to one that parses to the same key.
#include "backup/chunk_store.h"
#include "backup/datastore.h"
#include "backup/fixed_index.h"
#include "fuzz_common.h"

#include <set>

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
    // What a pull checks of a received blob: a plain one it accepts decodes to its digest.
    if (auto length = ChunkStore::CheckBlob(d, in.substr(32), false)) {
      auto content = ChunkStore::DecodeBlob(d, in.substr(32), nullptr);
      FUZZ_CHECK(content && content->size() == *length, "a plain blob CheckBlob accepts decodes to its length");
    }
    (void)ChunkStore::CheckBlob(d, in.substr(32), true);
  }
  // A manifest another node sent (a pull): every file it lists is a plain name, listed once.
  if (auto m = BackupDatastore::ParseManifest(in, BackupSnapshotId{100, 1764662400})) {
    std::set<std::string> names;
    for (const auto& f : m->files) {
      FUZZ_CHECK(names.insert(f.filename).second, "a manifest lists each file once");
      FUZZ_CHECK(f.filename.find('/') == std::string::npos && f.filename[0] != '.', "a manifest's file names are plain");
    }
  }
  if (auto key = BackupKey::FromKeyFile(in)) {
    auto again = BackupKey::FromKeyFile(key->ToKeyFile(0));
    FUZZ_CHECK(again && again->fingerprint() == key->fingerprint(), "a key file prints to the same key");
  }
  return 0;
}
