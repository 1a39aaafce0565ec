// Snapshot schedules as the API takes them: calendar events, keep-* retention strings and the
// stored JSON form. Invariants: a parsed event's next run is strictly later than the start;
// retention gives one mark per item and keeps at least one item when anything is kept; a
// schedule read back from its JSON prints the same JSON.
#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "fuzz_common.h"
#include "jobs/snapshot_schedule.h"
#include "model/calendar_event.h"
#include "model/retention.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  if (auto e = ParseCalendarEvent(text)) {
    for (int64_t start : {int64_t{0}, int64_t{1700000000}, int64_t{4102444799}}) {
      auto next = NextEvent(*e, start);
      FUZZ_CHECK(!next || *next > start, "the next event is after the start");
    }
  }
  if (auto keep = ParseKeepOptions(text)) {
    std::vector<PruneItem> items;
    for (int i = 0; i < 40; ++i) items.push_back({int64_t{1700000000} + i * 5000, i % 7 == 3});
    auto marks = MarkForPrune(items, *keep, /*utc=*/true);
    FUZZ_CHECK(marks.size() == items.size(), "one mark per item");
    size_t kept = 0;
    for (auto m : marks) kept += m == PruneMark::kKeep;
    FUZZ_CHECK(kept > 0, "retention keeps something");
    FUZZ_CHECK(ParseKeepOptions(keep->Print()), "printed options parse");
  }
  if (JsonDepthAtMost(text, 16)) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (auto s = SnapshotSchedule::FromJson(j)) {
      auto again = SnapshotSchedule::FromJson(s->ToJson());
      FUZZ_CHECK(again && again->ToJson() == s->ToJson(), "a schedule round-trips through JSON");
    }
  }
  return 0;
}
