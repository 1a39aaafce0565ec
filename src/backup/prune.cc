#include "backup/prune.h"

#include <algorithm>
#include <set>

namespace hearth {
namespace {

std::string Format(const std::tm& tm, const char* fmt) {
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

}  // namespace

std::string KeepOptions::Describe() const {
  if (keep_all) return "keep-all=1";
  std::string out;
  for (auto [key, v] : {std::pair{"keep-daily", daily}, {"keep-hourly", hourly}, {"keep-last", last},
                        {"keep-monthly", monthly}, {"keep-weekly", weekly}, {"keep-yearly", yearly}}) {
    if (v <= 0) continue;
    if (!out.empty()) out += ",";
    out += std::string(key) + "=" + std::to_string(v);
  }
  return out;
}

void PruneMarkGroup(std::vector<PruneEntry>& group, const KeepOptions& keep,
                    const std::function<std::tm(int64_t)>& local_time) {
  auto to_tm = [&](int64_t t) {
    if (local_time) return local_time(t);
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    localtime_r(&tt, &tm);
    return tm;
  };
  bool any = keep.last > 0 || keep.hourly > 0 || keep.daily > 0 || keep.weekly > 0 || keep.monthly > 0 || keep.yearly > 0;
  if (keep.keep_all || !any) {
    for (auto& e : group)
      if (e.mark.empty() || e.mark == "remove") e.mark = "keep";
    return;
  }
  std::vector<PruneEntry*> sorted;
  for (auto& e : group) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const PruneEntry* a, const PruneEntry* b) { return a->ctime > b->ctime; });

  auto pass = [&](int64_t n, const std::function<std::string(int64_t)>& bucket) {
    if (n <= 0) return;
    std::set<std::string> already;  // buckets kept by earlier passes
    for (const auto* e : sorted)
      if (e->mark == "keep") already.insert(bucket(e->ctime));
    std::set<std::string> taken;  // buckets this pass took
    for (auto* e : sorted) {
      if (!e->mark.empty()) continue;
      std::string id = bucket(e->ctime);
      if (already.count(id)) continue;
      if (taken.count(id)) {
        e->mark = "remove";  // an older backup of a bucket this pass kept
        continue;
      }
      if (static_cast<int64_t>(taken.size()) >= n) return;
      taken.insert(id);
      e->mark = "keep";
    }
  };
  pass(keep.last, [](int64_t t) { return std::to_string(t); });
  pass(keep.hourly, [&](int64_t t) { return Format(to_tm(t), "%Y/%m/%d/%H"); });
  pass(keep.daily, [&](int64_t t) { return Format(to_tm(t), "%Y/%m/%d"); });
  pass(keep.weekly, [&](int64_t t) { return Format(to_tm(t), "%G/%V"); });
  pass(keep.monthly, [&](int64_t t) { return Format(to_tm(t), "%Y/%m"); });
  pass(keep.yearly, [&](int64_t t) { return Format(to_tm(t), "%Y"); });
  for (auto& e : group)
    if (e.mark.empty()) e.mark = "remove";
}

}  // namespace hearth
