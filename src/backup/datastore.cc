#include "backup/datastore.h"

#include <algorithm>
#include <map>
#include <ctime>
#include <set>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "core/time_format.h"

namespace hearth {
namespace {

namespace stdfs = std::filesystem;
constexpr size_t kMaxSmallFile = 16 << 20;  // manifests, configs, notes; indexes of 64 TiB are 512 MiB

std::string Hex(std::string_view data) { return DigestHex(Sha256Digest(data)); }

std::string SealedFileLabel(const BackupSnapshotId& id, const std::string& filename) {
  return id.Name() + "/" + filename;
}

bool ValidFileName(const std::string& f) {
  if (f.empty() || f.size() > 128 || f[0] == '.') return false;
  for (char c : f)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

}  // namespace

std::string Rfc3339Utc(int64_t t) { return FormatUnixTime(t, "%Y-%m-%dT%H:%M:%SZ", /*utc=*/true); }

std::string BackupSnapshotId::Name() const { return "vm/" + std::to_string(vmid) + "/" + Rfc3339Utc(time); }

std::optional<BackupSnapshotId> BackupSnapshotId::Parse(std::string_view name) {
  auto parts = Split(name, '/');
  if (parts.size() != 3 || parts[0] != "vm") return std::nullopt;
  auto vmid = ParseInt(parts[1]);
  if (!vmid || *vmid < 100 || *vmid > 999999999 || std::to_string(*vmid) != parts[1]) return std::nullopt;
  const std::string& ts = parts[2];
  if (ts.size() != 20) return std::nullopt;
  std::tm tm{};
  const char* end = strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != '\0') return std::nullopt;
  BackupSnapshotId id{static_cast<int>(*vmid), static_cast<int64_t>(timegm(&tm))};
  if (Rfc3339Utc(id.time) != ts) return std::nullopt;  // canonical only (no 24:00, no Feb 30)
  return id;
}

BackupDatastore::BackupDatastore(FileSystem& fs, std::string root, ChunkStoreOptions options)
    : fs_(fs), root_(std::move(root)), chunks_(fs, root_, options) {}

std::string BackupDatastore::Dir(const BackupSnapshotId& id) const { return root_ + "/" + id.Name(); }

Result<std::unique_ptr<BackupDatastore::Writer>> BackupDatastore::Begin(int vmid, int64_t time) {
  BackupSnapshotId id{vmid, time};
  if (fs_.Exists(Dir(id))) return Fail(AlreadyExists("backup '" + id.Name() + "' already exists"));
  std::string tmp = root_ + "/vm/" + std::to_string(vmid) + "/." + Rfc3339Utc(time) + ".tmp";
  std::error_code ec;
  stdfs::remove_all(tmp, ec);  // a crashed attempt at the same second
  HEARTH_TRY(fs_.MakeDirs(tmp));
  return std::unique_ptr<Writer>(new Writer(*this, id, tmp));
}

BackupDatastore::Writer::Writer(BackupDatastore& store, BackupSnapshotId id, std::string tmp_dir)
    : store_(store), id_(id), tmp_dir_(std::move(tmp_dir)) {
  if (const BackupKey* key = store_.chunks_.key()) key_fingerprint_ = key->fingerprint();
}

Status BackupDatastore::Writer::Put(const std::string& filename, const std::string& content, uint64_t image_size,
                                    bool encrypted) {
  if (!ValidFileName(filename)) return Fail(InvalidArgument("invalid backup file name '" + filename + "'"));
  for (const auto& f : files_)
    if (f.filename == filename) return Fail(AlreadyExists("backup file '" + filename + "' written twice"));
  HEARTH_TRY(WriteFileAtomic(store_.fs_, tmp_dir_ + "/" + filename, content));
  files_.push_back({filename, content.size(), Hex(content), image_size, encrypted});
  return Ok();
}

Status BackupDatastore::Writer::AddImage(const std::string& drive, const FixedIndex& index) {
  HEARTH_TRY(Put(drive + ".img.fidx", EncodeFixedIndex(index), index.size, store_.chunks_.key() != nullptr));
  image_bytes_ += index.size;
  return Ok();
}

Status BackupDatastore::Writer::AddBlob(const std::string& filename, const std::string& content) {
  const BackupKey* key = store_.chunks_.key();
  if (!key) return Put(filename, content, 0, false);
  // The file's and the backup's names are authenticated with it: a sealed file cannot stand
  // in for another, nor for the same file of another backup.
  HEARTH_ASSIGN_OR_RETURN(std::string sealed, key->Seal(content, SealedFileLabel(id_, filename)));
  return Put(filename, sealed, 0, true);
}

Status BackupDatastore::Writer::CopyFile(const BackupFileEntry& entry, const std::string& bytes) {
  if (bytes.size() != entry.size || Hex(bytes) != entry.csum)
    return Fail(Internal("backup file '" + entry.filename + "' does not match its checksum"));
  HEARTH_TRY(Put(entry.filename, bytes, entry.image_size, entry.encrypted));
  image_bytes_ += entry.image_size;
  return Ok();
}

Status BackupDatastore::Writer::SetNotes(const std::string& notes) {
  if (notes.size() > (1 << 16)) return Fail(FieldError("notes", "value may only be 65536 characters long"));
  if (notes.empty()) return Ok();
  return WriteFileAtomic(store_.fs_, tmp_dir_ + "/notes", notes);
}

Status BackupDatastore::Writer::SetProtected(bool on) {
  if (!on) return Ok();
  return WriteFileAtomic(store_.fs_, tmp_dir_ + "/.protected", "");
}

Result<BackupSnapshotInfo> BackupDatastore::Writer::Finish() {
  nlohmann::json m = {{"backup-type", "vm"}, {"backup-id", std::to_string(id_.vmid)}, {"backup-time", id_.time},
                      {"files", nlohmann::json::array()}};
  for (const auto& f : files_) {
    nlohmann::json e = {{"filename", f.filename}, {"size", f.size}, {"csum", f.csum},
                        {"crypt-mode", f.encrypted ? "encrypt" : "none"}};
    if (f.image_size) e["image-size"] = f.image_size;
    m["files"].push_back(e);
  }
  if (!key_fingerprint_.empty()) {
    m["key-fingerprint"] = key_fingerprint_;
    // Signed over the compact dump (nlohmann's objects keep their keys sorted, so a reader
    // gets the same bytes back by dropping the signature); a copy keeps its source's.
    const BackupKey* key = store_.chunks_.key();
    if (signature_.empty() && key && key->fingerprint() == key_fingerprint_) signature_ = key->Sign(m.dump());
    if (signature_.empty()) return Fail(Internal("an encrypted backup needs its key or its signature to be written"));
    m["signature"] = signature_;
  }
  // Everything the manifest names must be durable before the manifest is.
  HEARTH_TRY(store_.chunks_.Sync());
  HEARTH_TRY(WriteFileAtomic(store_.fs_, tmp_dir_ + "/index.json", m.dump(1)));
  std::string dir = store_.Dir(id_);
  if (store_.fs_.Exists(dir)) return Fail(AlreadyExists("backup '" + id_.Name() + "' already exists"));
  HEARTH_TRY(store_.fs_.Rename(tmp_dir_, dir));
  HEARTH_TRY(store_.fs_.SyncDir(ParentDir(dir)));
  done_ = true;
  BackupSnapshotInfo info;
  info.id = id_;
  info.size = image_bytes_;
  return info;
}

void BackupDatastore::Writer::Abort() {
  if (done_) return;
  std::error_code ec;
  stdfs::remove_all(tmp_dir_, ec);
  done_ = true;
}

BackupDatastore::Writer::~Writer() { Abort(); }

Result<std::string> BackupDatastore::ManifestText(const BackupSnapshotId& id) {
  auto text = fs_.Read(Dir(id) + "/index.json", kMaxSmallFile);
  if (!text && text.error().code == ErrorCode::kNotFound) return Fail(NotFound("backup '" + id.Name() + "' does not exist"));
  return text;
}

Result<BackupManifest> BackupDatastore::Manifest(const BackupSnapshotId& id) {
  HEARTH_ASSIGN_OR_RETURN(std::string text, ManifestText(id));
  return ParseManifest(text, id);
}

Result<BackupManifest> BackupDatastore::ParseManifest(std::string_view text, const BackupSnapshotId& id) {
  if (text.size() > kMaxSmallFile) return Fail(Internal("backup '" + id.Name() + "': manifest is too large"));
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto bad = [&](const std::string& why) { return Fail(Internal("backup '" + id.Name() + "': manifest " + why)); };
  if (!j.is_object() || !j["files"].is_array()) return bad("does not parse");
  // Hostile input: every key is looked for before it is read (a const operator[] on a missing
  // key is undefined, value() throws on another type).
  auto has = [](const nlohmann::json& o, const char* key, bool (nlohmann::json::*is)() const noexcept) {
    auto it = o.find(key);
    return it != o.end() && ((*it).*is)();
  };
  if (!has(j, "backup-id", &nlohmann::json::is_string) || j["backup-id"].get<std::string>() != std::to_string(id.vmid) ||
      !has(j, "backup-time", &nlohmann::json::is_number_integer) || j["backup-time"].get<int64_t>() != id.time)
    return bad("names another backup");
  BackupManifest m;
  m.id = id;
  std::set<std::string> names;
  for (const auto& f : j["files"]) {
    if (!f.is_object() || !has(f, "filename", &nlohmann::json::is_string) ||
        !has(f, "size", &nlohmann::json::is_number_unsigned) || !has(f, "csum", &nlohmann::json::is_string))
      return bad("has a bad file entry");
    if (f.contains("image-size") && !f["image-size"].is_number_unsigned()) return bad("has a bad file entry");
    if (f.contains("crypt-mode") && !f["crypt-mode"].is_string()) return bad("has a bad file entry");
    BackupFileEntry e{f["filename"].get<std::string>(), f["size"].get<uint64_t>(), f["csum"].get<std::string>(),
                      f.value("image-size", uint64_t{0}), f.value("crypt-mode", "none") == "encrypt"};
    if (!ValidFileName(e.filename)) return bad("names a bad file");
    if (!names.insert(e.filename).second) return bad("lists a file twice");
    m.files.push_back(std::move(e));
  }
  if (j.contains("key-fingerprint")) {
    if (!j["key-fingerprint"].is_string() || j["key-fingerprint"].get<std::string>().size() > 128)
      return bad("has a bad key fingerprint");
    m.key_fingerprint = j["key-fingerprint"].get<std::string>();
  }
  for (const auto& f : m.files) {
    if (f.encrypted && m.key_fingerprint.empty()) return bad("has encrypted files but no key fingerprint");
    if (!f.encrypted && !m.key_fingerprint.empty()) return bad("has plain files in an encrypted backup");
  }
  if (!m.key_fingerprint.empty()) {
    if (!j.contains("signature") || !j["signature"].is_string() || j["signature"].get<std::string>().size() != 64)
      return bad("of an encrypted backup is not signed");
    m.signature = j["signature"].get<std::string>();
    j.erase("signature");
    m.signed_text = j.dump();
  }
  return m;
}

Status BackupDatastore::CheckKey(const BackupManifest& m) const {
  if (m.key_fingerprint.empty()) return Ok();
  const BackupKey* key = chunks_.key();
  if (!key)
    return Fail(FailedPrecondition("backup '" + m.id.Name() + "' is encrypted (key fingerprint " + m.key_fingerprint +
                                   ") and the storage has no encryption key: set its encryption-key to that key"));
  if (key->fingerprint() != m.key_fingerprint)
    return Fail(FailedPrecondition("wrong encryption key: backup '" + m.id.Name() + "' was encrypted with key " +
                                   m.key_fingerprint + ", the storage's key is " + key->fingerprint()));
  if (key->Sign(m.signed_text) != m.signature)
    return Fail(Internal("backup '" + m.id.Name() + "': the manifest's signature does not match (it was changed)"));
  return Ok();
}

Result<std::string> BackupDatastore::ReadBlob(const BackupSnapshotId& id, const std::string& filename) {
  HEARTH_ASSIGN_OR_RETURN(BackupManifest m, Manifest(id));
  HEARTH_ASSIGN_OR_RETURN(std::string bytes, ReadFileOf(m, filename));
  bool sealed = false;
  for (const auto& f : m.files)
    if (f.filename == filename) sealed = f.encrypted;
  if (!sealed) return bytes;
  HEARTH_TRY(CheckKey(m));
  return chunks_.key()->Open(bytes, SealedFileLabel(id, filename)).map_error([&](Error e) {
    return e.WithContext("backup '" + id.Name() + "': " + filename);
  });
}

Result<std::string> BackupDatastore::ReadFile(const BackupSnapshotId& id, const std::string& filename) {
  HEARTH_ASSIGN_OR_RETURN(BackupManifest m, Manifest(id));
  return ReadFileOf(m, filename);
}

Result<std::string> BackupDatastore::ReadFileOf(const BackupManifest& m, const std::string& filename) {
  const BackupSnapshotId& id = m.id;
  for (const auto& f : m.files) {
    if (f.filename != filename) continue;
    auto data = fs_.Read(Dir(id) + "/" + filename, f.size);
    if (!data && data.error().code == ErrorCode::kNotFound)
      return Fail(NotFound("backup '" + id.Name() + "': " + filename + " is missing"));
    // Larger than the manifest says (Read refuses it) or different: modified either way.
    if (!data || data->size() != f.size || Hex(*data) != f.csum)
      return Fail(Internal("backup '" + id.Name() + "': " + filename + " has been modified (checksum mismatch)"));
    return std::move(*data);
  }
  return Fail(NotFound("backup '" + id.Name() + "' has no file '" + filename + "'"));
}

Result<FixedIndex> BackupDatastore::ReadIndex(const BackupSnapshotId& id, const std::string& drive) {
  HEARTH_ASSIGN_OR_RETURN(BackupManifest m, Manifest(id));
  HEARTH_ASSIGN_OR_RETURN(std::string bytes, ReadFileOf(m, drive + ".img.fidx"));
  HEARTH_ASSIGN_OR_RETURN(FixedIndex index, DecodeFixedIndex(bytes).map_error([&](Error e) {
    return e.WithContext("backup '" + id.Name() + "' " + drive);
  }));
  index.encrypted = !m.key_fingerprint.empty();
  return index;
}

Result<BackupSnapshotInfo> BackupDatastore::Info(const BackupSnapshotId& id) {
  HEARTH_ASSIGN_OR_RETURN(BackupManifest m, Manifest(id));
  BackupSnapshotInfo info;
  info.id = id;
  for (const auto& f : m.files) info.size += f.image_size;
  info.key_fingerprint = m.key_fingerprint;
  if (auto notes = fs_.Read(Dir(id) + "/notes", 1 << 16)) info.notes = *notes;
  info.is_protected = fs_.Exists(Dir(id) + "/.protected");
  if (auto v = fs_.Read(Dir(id) + "/verify.json", 1 << 16)) {
    auto j = nlohmann::json::parse(*v, nullptr, false);
    if (j.is_object()) {
      info.verify_state = j.value("state", "");
      info.verify_upid = j.value("upid", "");
    }
  }
  return info;
}

Result<std::vector<BackupSnapshotInfo>> BackupDatastore::List(int vmid) {
  std::vector<BackupSnapshotInfo> out;
  std::error_code ec;
  stdfs::path vm_root = root_ + "/vm";
  if (!stdfs::exists(vm_root, ec)) return out;
  for (const auto& group : stdfs::directory_iterator(vm_root, ec)) {
    std::string gname = group.path().filename().string();
    if (vmid && gname != std::to_string(vmid)) continue;
    std::error_code gec;
    for (const auto& snap : stdfs::directory_iterator(group.path(), gec)) {
      auto id = BackupSnapshotId::Parse("vm/" + gname + "/" + snap.path().filename().string());
      if (!id) continue;  // temporary directories, strangers
      if (auto info = Info(*id)) out.push_back(*info);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

Status BackupDatastore::Remove(const BackupSnapshotId& id) {
  HEARTH_TRY(Manifest(id));
  if (fs_.Exists(Dir(id) + "/.protected")) return Fail(FailedPrecondition("backup '" + id.Name() + "' is protected"));
  // Renamed away first, so that nobody sees a half-removed snapshot.
  std::string gone = root_ + "/vm/" + std::to_string(id.vmid) + "/." + Rfc3339Utc(id.time) + ".removing";
  HEARTH_TRY(fs_.Rename(Dir(id), gone));
  HEARTH_TRY(fs_.SyncDir(ParentDir(gone)));
  std::error_code ec;
  stdfs::remove_all(gone, ec);
  return Ok();
}

Status BackupDatastore::SetNotes(const BackupSnapshotId& id, const std::string& notes) {
  HEARTH_TRY(Manifest(id));
  if (notes.size() > (1 << 16)) return Fail(FieldError("notes", "value may only be 65536 characters long"));
  std::string path = Dir(id) + "/notes";
  if (notes.empty()) {  // an empty note removes it (Proxmox)
    if (!fs_.Exists(path)) return Ok();
    HEARTH_TRY(fs_.Remove(path));
    return fs_.SyncDir(Dir(id));
  }
  return WriteFileAtomic(fs_, path, notes);
}

Status BackupDatastore::SetProtected(const BackupSnapshotId& id, bool on) {
  HEARTH_TRY(Manifest(id));
  std::string mark = Dir(id) + "/.protected";
  if (on) return fs_.Exists(mark) ? Ok() : WriteFileAtomic(fs_, mark, "");
  if (!fs_.Exists(mark)) return Ok();
  HEARTH_TRY(fs_.Remove(mark));
  return fs_.SyncDir(Dir(id));
}

Result<std::vector<std::string>> BackupDatastore::Verify(const BackupSnapshotId& id, const std::string& upid,
                                                        bool* without_key) {
  HEARTH_ASSIGN_OR_RETURN(BackupManifest m, Manifest(id));
  // An encrypted backup this store has no key for (an offsite copy) is checked as far as
  // that is possible: every file against the manifest, every chunk against its frame and the
  // checksum of its sealed payload, as Proxmox Backup Server verifies encrypted chunks.
  Status keyed = CheckKey(m);
  if (!keyed && keyed.error().code != ErrorCode::kFailedPrecondition) return Fail(keyed.error());
  bool full = keyed.has_value();
  if (without_key) *without_key = !full;
  std::vector<std::string> problems;
  for (const auto& f : m.files) {
    auto data = ReadFileOf(m, f.filename);
    if (!data) {
      problems.push_back(data.error().message);
      continue;
    }
    if (!EndsWith(f.filename, ".img.fidx")) {
      if (f.encrypted && full) {
        if (auto plain = chunks_.key()->Open(*data, SealedFileLabel(id, f.filename)); !plain)
          problems.push_back(f.filename + ": " + plain.error().message);
      }
      continue;
    }
    std::string drive = f.filename.substr(0, f.filename.size() - 9);
    auto idx = DecodeFixedIndex(*data);
    if (!idx) {
      problems.push_back(drive + ": " + idx.error().message);
      continue;
    }
    // Each distinct chunk is read once (an image's zero chunks are one chunk), and a bad one
    // is reported once with every position that needs it.
    std::map<ChunkDigest, std::string> verdict;  // "" when good
    std::map<ChunkDigest, std::vector<size_t>> bad_at;
    std::vector<ChunkDigest> bad_order;
    for (size_t i = 0; i < idx->digests.size(); ++i) {
      const ChunkDigest& d = idx->digests[i];
      auto seen = verdict.find(d);
      if (seen == verdict.end()) {
        std::string problem;
        if (!full) {
          if (auto blob = chunks_.ReadBlob(d, nullptr); !blob) problem = blob.error().message;
        } else if (auto chunk = chunks_.Read(d, f.encrypted); !chunk) {
          problem = chunk.error().message;
        } else if (chunk->size() != idx->ChunkBytes(i)) {
          problem = "chunk " + DigestHex(d) + " has the wrong size";
        }
        seen = verdict.emplace(d, problem).first;
      }
      if (seen->second.empty()) continue;
      if (bad_at[d].empty()) bad_order.push_back(d);
      bad_at[d].push_back(i);
    }
    for (const auto& d : bad_order) {
      const auto& at = bad_at[d];
      std::string where = at.size() == 1 ? "chunk " + std::to_string(at[0]) : "chunks ";
      for (size_t k = 0; at.size() > 1 && k < at.size() && k < 8; ++k) where += (k ? ", " : "") + std::to_string(at[k]);
      if (at.size() > 8) where += ", ... (" + std::to_string(at.size()) + " in all)";
      problems.push_back(drive + " (" + where + "): " + verdict[d]);
    }
  }
  nlohmann::json state = {{"state", problems.empty() ? "ok" : "failed"}, {"upid", upid}};
  HEARTH_TRY(WriteFileAtomic(fs_, Dir(id) + "/verify.json", state.dump()));
  return problems;
}

Result<BackupDatastore::GcStats> BackupDatastore::GarbageCollect(std::chrono::system_clock::time_point start) {
  GcStats stats;
  auto cutoff = start - ChunkStore::kGcGrace;
  std::set<ChunkDigest> touched;  // each chunk once, however many backups share it
  std::error_code ec;
  stdfs::path vm_root = root_ + "/vm";
  auto cutoff_ft = stdfs::file_time_type::clock::now() - (std::chrono::system_clock::now() - cutoff);
  if (stdfs::exists(vm_root, ec)) {
    for (const auto& group : stdfs::directory_iterator(vm_root, ec)) {
      std::error_code gec;
      for (const auto& snap : stdfs::directory_iterator(group.path(), gec)) {
        std::string name = snap.path().filename().string();
        bool temporary = StartsWith(name, ".");
        // A writer that stopped (a crash) long ago: nobody will finish it.
        std::error_code tec;
        if (temporary && snap.last_write_time(tec) < cutoff_ft && !tec) {
          stdfs::remove_all(snap.path(), tec);
          continue;
        }
        // Mark: finished snapshots and running writers' indexes alike.
        std::error_code fec;
        for (const auto& f : stdfs::directory_iterator(snap.path(), fec)) {
          if (!EndsWith(f.path().filename().string(), ".img.fidx")) continue;
          auto bytes = fs_.Read(f.path().string(), std::size_t{1} << 30);
          if (!bytes) return Fail(bytes.error().WithContext("garbage collection"));
          auto idx = DecodeFixedIndex(*bytes);
          // An index that does not read must not let its chunks go: stop the GC.
          if (!idx) return Fail(idx.error().WithContext("garbage collection: " + f.path().string()));
          ++stats.indexes;
          for (const auto& d : idx->digests)
            if (touched.insert(d).second) (void)chunks_.Touch(d);  // a missing chunk is Verify's finding
        }
      }
    }
  }
  HEARTH_ASSIGN_OR_RETURN(stats.sweep, chunks_.Sweep(cutoff));
  return stats;
}

}  // namespace hearth
