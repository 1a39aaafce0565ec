// Rendering of API results for the CLI: aligned tables for people (sizes in MiB/GiB,
// durations as "1d 2h", times as dates), or the API's JSON unchanged with `--output json`
// for scripts. Not thread-safe (the CLI is single-threaded).
#pragma once

#include "core/units.h"  // HumanBytes

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth {

enum class CellFormat { kPlain, kBytes, kDuration, kTime };

struct Column {
  std::string key;     // the API field
  std::string header;  // "" = the key in capitals
  CellFormat format = CellFormat::kPlain;
};

// "text" (default) or "json"; set once from --output.
void SetOutputFormat(const std::string& format);
bool JsonOutput();

// A list: the table of `columns`, or with --output json the items as the API returned them.
void PrintList(const nlohmann::json& items, const std::vector<Column>& columns);
std::string JsonScalarText(const nlohmann::json& v);
// Prints an object as "key: value" lines, sorted by key (or as JSON with --output json).
void PrintKeyValues(const nlohmann::json& obj);

// 93784 -> "1d 2h", 3720 -> "1h 2m", 75 -> "1m 15s", 0 -> "-".
std::string HumanDuration(int64_t seconds);

}  // namespace hearth
