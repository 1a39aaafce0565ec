// Plain-text rendering of API results for the CLI.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth {

// Prints rows of `items` as an aligned table with the given columns (missing values blank).
void PrintTable(const nlohmann::json& items, const std::vector<std::string>& columns);
std::string JsonScalarText(const nlohmann::json& v);
// Prints an object as "key: value" lines, sorted by key.
void PrintKeyValues(const nlohmann::json& obj);

}  // namespace hearth
