#include "core/text_diff.h"

#include <vector>

namespace hearth {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

struct Edit {
  char op;  // ' ', '-', '+'
  size_t a, b;  // line numbers (0-based) in the old and new text before this edit
  std::string line;
};

}  // namespace

std::string UnifiedDiff(const std::string& old_name, const std::string& new_name, const std::string& old_text,
                        const std::string& new_text) {
  if (old_text == new_text) return "";
  auto a = Lines(old_text), b = Lines(new_text);
  std::string out = "--- " + old_name + "\n+++ " + new_name + "\n";
  if (a.size() > kMaxDiffLines || b.size() > kMaxDiffLines)
    return out + "@@ " + std::to_string(a.size()) + " lines -> " + std::to_string(b.size()) + " lines @@\n";
  // Longest common subsequence table (suffix form), then one walk to list the edits.
  size_t n = a.size(), m = b.size();
  std::vector<unsigned> lcs((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> unsigned& { return lcs[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      at(i, j) = a[i] == b[j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
  std::vector<Edit> edits;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      edits.push_back({' ', i, j, a[i]});
      ++i, ++j;
    } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
      edits.push_back({'-', i, j, a[i]});  // deletions before insertions, as diff -u
      ++i;
    } else {
      edits.push_back({'+', i, j, b[j]});
      ++j;
    }
  }
  // Hunks: changed edits with up to three lines of context around them.
  const size_t kContext = 3;
  size_t k = 0;
  while (k < edits.size()) {
    if (edits[k].op == ' ') {
      ++k;
      continue;
    }
    size_t start = k >= kContext ? k - kContext : 0;
    while (start < k && edits[start].op != ' ') ++start;
    size_t end = k;  // one past the hunk's last edit
    size_t quiet = 0;
    while (end < edits.size() && quiet <= 2 * kContext) {
      quiet = edits[end].op == ' ' ? quiet + 1 : 0;
      ++end;
    }
    if (quiet > kContext) end -= quiet - kContext;
    size_t old_count = 0, new_count = 0;
    for (size_t e = start; e < end; ++e) {
      if (edits[e].op != '+') ++old_count;
      if (edits[e].op != '-') ++new_count;
    }
    size_t old_start = edits[start].a + (old_count ? 1 : 0), new_start = edits[start].b + (new_count ? 1 : 0);
    out += "@@ -" + std::to_string(old_start) + "," + std::to_string(old_count) + " +" + std::to_string(new_start) +
           "," + std::to_string(new_count) + " @@\n";
    for (size_t e = start; e < end; ++e) out += std::string(1, edits[e].op) + edits[e].line + "\n";
    k = end;
  }
  return out;
}

}  // namespace hearth
