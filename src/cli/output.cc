#include "cli/output.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace hearth {

std::string JsonScalarText(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v.get<double>());
    return buf;
  }
  return v.dump();
}

void PrintTable(const nlohmann::json& items, const std::vector<std::string>& columns) {
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> width;
  for (const auto& c : columns) width.push_back(c.size());
  for (const auto& item : items) {
    std::vector<std::string> row;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string cell = item.contains(columns[i]) ? JsonScalarText(item[columns[i]]) : "";
      width[i] = std::max(width[i], cell.size());
      row.push_back(cell);
    }
    rows.push_back(row);
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  };
  std::vector<std::string> header;
  for (const auto& c : columns) {
    std::string h = c;
    std::transform(h.begin(), h.end(), h.begin(), ::toupper);
    header.push_back(h);
  }
  print_row(header);
  for (const auto& r : rows) print_row(r);
}

void PrintKeyValues(const nlohmann::json& obj) {
  for (const auto& [k, v] : obj.items()) std::cout << k << ": " << JsonScalarText(v) << "\n";
}

}  // namespace hearth
