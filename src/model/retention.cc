#include "model/retention.h"

#include <time.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "core/strings.h"

namespace hearth {

bool KeepOptions::KeepsAll() const {
  return keep_all || (last <= 0 && hourly <= 0 && daily <= 0 && weekly <= 0 && monthly <= 0 && yearly <= 0);
}

const std::vector<std::string>& KeepOptionNames() {
  static const std::vector<std::string> names = {"keep-all",    "keep-last",   "keep-hourly", "keep-daily",
                                                 "keep-weekly", "keep-monthly", "keep-yearly"};
  return names;
}

namespace {

int* Field(KeepOptions& k, std::string_view key) {
  if (key == "keep-last") return &k.last;
  if (key == "keep-hourly") return &k.hourly;
  if (key == "keep-daily") return &k.daily;
  if (key == "keep-weekly") return &k.weekly;
  if (key == "keep-monthly") return &k.monthly;
  if (key == "keep-yearly") return &k.yearly;
  return nullptr;
}

}  // namespace

std::string KeepOptions::Print() const {
  if (KeepsAll()) return "keep-all=1";
  std::vector<std::string> parts;
  KeepOptions copy = *this;
  for (const auto& name : KeepOptionNames())
    if (int* f = Field(copy, name); f && *f > 0) parts.push_back(name + "=" + std::to_string(*f));
  return Join(parts, ",");
}

Result<KeepOptions> ParseKeepOptionsParam(const std::string& field, std::string_view text) {
  auto keep = ParseKeepOptions(text);
  if (keep) return keep;
  const Error& e = keep.error();
  std::string why = e.fields.empty() ? e.message : e.fields.begin()->first + ": " + e.fields.begin()->second;
  return Fail(FieldError(field, "invalid format - " + why));
}

Result<KeepOptions> ParseKeepOptions(std::string_view text) {
  KeepOptions k;
  if (text.size() > 1024) return Fail(InvalidArgument("value may only be 1024 characters long"));
  std::set<std::string> seen;
  for (auto part : Split(text, ',')) {
    if (Trim(part).empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string::npos) return Fail(InvalidArgument("value without key, but schema does not define a default key"));
    std::string key(Trim(part.substr(0, eq))), value(Trim(part.substr(eq + 1)));
    if (key.empty()) return Fail(InvalidArgument("missing key in comma-separated list property"));
    if (!seen.insert(key).second) return Fail(InvalidArgument("duplicate key in comma-separated list property: " + key));
    if (key == "keep-all") {
      std::string v = ToLower(value);
      if (v == "1" || v == "on" || v == "yes" || v == "true") k.keep_all = true;
      else if (v == "0" || v == "off" || v == "no" || v == "false") k.keep_all = false;
      else return Fail(FieldError(key, "type check ('boolean') failed - got '" + value + "'"));
      continue;
    }
    int* f = Field(k, key);
    if (!f) return Fail(InvalidArgument("invalid key in comma-separated list property: " + key));
    auto n = ParseInt(value);
    if (!n || value.empty()) return Fail(FieldError(key, "type check ('integer') failed - got '" + value + "'"));
    if (*n < 0) return Fail(FieldError(key, "value must have a minimum value of 0"));
    if (*n > 1000000) return Fail(FieldError(key, "value must have a maximum value of 1000000"));
    *f = static_cast<int>(*n);
  }
  KeepOptions counts = k;
  counts.keep_all = false;
  if (counts.KeepsAll()) return KeepOptions{.keep_all = true};
  if (k.keep_all) return Fail(InvalidArgument("keep-all cannot be set together with other options."));
  return k;
}

const char* PruneMarkName(PruneMark m) {
  switch (m) {
    case PruneMark::kKeep: return "keep";
    case PruneMark::kRemove: return "remove";
    case PruneMark::kProtected: return "protected";
  }
  return "?";
}

std::vector<PruneMark> MarkForPrune(const std::vector<PruneItem>& items, const KeepOptions& keep, bool utc) {
  std::vector<std::optional<PruneMark>> marks(items.size());
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].is_protected) marks[i] = PruneMark::kProtected;
  auto finish = [&](PruneMark rest) {
    std::vector<PruneMark> out;
    for (const auto& m : marks) out.push_back(m.value_or(rest));
    return out;
  };
  if (keep.KeepsAll()) return finish(PruneMark::kKeep);

  std::vector<size_t> order(items.size());  // newest first
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return items[a].ctime > items[b].ctime; });
  auto bucket = [&](size_t i, const char* fmt) -> std::string {
    if (!fmt) return std::to_string(items[i].ctime);
    time_t t = static_cast<time_t>(items[i].ctime);
    struct tm tm {};
    if (utc ? !gmtime_r(&t, &tm) : !localtime_r(&t, &tm)) return std::to_string(items[i].ctime);
    char buf[32];
    strftime(buf, sizeof buf, fmt, &tm);
    return buf;
  };
  // One pass per option, shorter intervals first; each only looks at what earlier passes
  // left, and a bucket already kept by an earlier pass is not taken again.
  const std::pair<int, const char*> passes[] = {{keep.last, nullptr},      {keep.hourly, "%Y/%m/%d/%H"},
                                                {keep.daily, "%Y/%m/%d"},  {keep.weekly, "%G/%V"},
                                                {keep.monthly, "%Y/%m"},   {keep.yearly, "%Y"}};
  for (const auto& [count, fmt] : passes) {
    if (count <= 0) continue;
    std::set<std::string> already;
    for (size_t i : order)
      if (marks[i] == PruneMark::kKeep) already.insert(bucket(i, fmt));
    std::set<std::string> taken;
    for (size_t i : order) {
      if (marks[i]) continue;
      std::string id = bucket(i, fmt);
      if (already.count(id)) continue;
      if (taken.count(id)) {
        marks[i] = PruneMark::kRemove;  // an older one of a bucket this pass kept
        continue;
      }
      if (static_cast<int>(taken.size()) >= count) break;
      taken.insert(id);
      marks[i] = PruneMark::kKeep;
    }
  }
  return finish(PruneMark::kRemove);
}

}  // namespace hearth
