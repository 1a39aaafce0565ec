// ResponseCache: serialised response bodies reused while their source has not changed.
//
// Listing 1,000 VMs as JSON costs ~10 ms; serving the same bytes again costs microseconds.
// A body is cached under a key (route, query, and whatever about the caller changes the
// answer) together with the `version` it was built from; any other version rebuilds it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace hearth {

// A serialised body and, for large ones, its gzip encoding (made once per build, so clients
// that accept gzip — most do — cost no compression per request).
struct CachedBody {
  std::string plain;
  std::string gzip;  // empty if not worth compressing
};

std::string GzipCompress(const std::string& data);

class ResponseCache {
 public:
  std::shared_ptr<const CachedBody> Get(const std::string& key, uint64_t version,
                                        const std::function<std::string()>& build) {
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.version == version) return it->second.body;
    }
    auto built = std::make_shared<CachedBody>();
    built->plain = build();
    if (built->plain.size() > 1024) built->gzip = GzipCompress(built->plain);
    std::shared_ptr<const CachedBody> body = built;
    std::lock_guard lock(mu_);
    if (entries_.size() > 256) entries_.clear();  // keys are few; this only bounds misuse
    entries_[key] = Entry{version, body};
    return body;
  }

 private:
  struct Entry {
    uint64_t version = 0;
    std::shared_ptr<const CachedBody> body;
  };
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
};

}  // namespace hearth
