#include "cli/output.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace hearth {
namespace {

bool g_json = false;

std::string Cell(const nlohmann::json& item, const Column& c) {
  if (!item.contains(c.key)) return "";
  const auto& v = item[c.key];
  switch (c.format) {
    case CellFormat::kBytes:
      if (v.is_number()) return HumanBytes(v.get<uint64_t>());
      break;
    case CellFormat::kDuration:
      if (v.is_number()) return HumanDuration(v.get<int64_t>());
      break;
    case CellFormat::kTime:
      if (v.is_number()) {
        std::time_t t = v.get<int64_t>();
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
        return buf;
      }
      break;
    case CellFormat::kPlain:
      break;
  }
  return JsonScalarText(v);
}

}  // namespace

void SetOutputFormat(const std::string& format) { g_json = format == "json"; }
bool JsonOutput() { return g_json; }

std::string HumanDuration(int64_t s) {
  if (s <= 0) return "-";
  int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
  if (d) return std::to_string(d) + "d " + std::to_string(h) + "h";
  if (h) return std::to_string(h) + "h " + std::to_string(m) + "m";
  if (m) return std::to_string(m) + "m " + std::to_string(sec) + "s";
  return std::to_string(sec) + "s";
}

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

void PrintList(const nlohmann::json& items, const std::vector<Column>& columns) {
  if (g_json) {
    std::cout << items.dump(2) << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> width;
  std::vector<std::string> header;
  for (const auto& c : columns) {
    std::string h = c.header.empty() ? c.key : c.header;
    std::transform(h.begin(), h.end(), h.begin(), ::toupper);
    header.push_back(h);
    width.push_back(h.size());
  }
  for (const auto& item : items) {
    std::vector<std::string> row;
    for (size_t i = 0; i < columns.size(); ++i) {
      row.push_back(Cell(item, columns[i]));
      width[i] = std::max(width[i], row.back().size());
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
  print_row(header);
  for (const auto& r : rows) print_row(r);
}

void PrintKeyValues(const nlohmann::json& obj) {
  if (g_json) {
    std::cout << obj.dump(2) << "\n";
    return;
  }
  for (const auto& [k, v] : obj.items()) std::cout << k << ": " << JsonScalarText(v) << "\n";
}

}  // namespace hearth
