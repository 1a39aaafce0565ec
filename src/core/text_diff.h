// UnifiedDiff: the differences between two texts as `diff -u` prints them (headers, hunks
// with three lines of context), for showing pending configuration changes. Pure.
#pragma once

#include <string>

namespace hearth {

// "" when the texts are equal. Texts longer than kMaxDiffLines lines on either side give a
// one-line summary instead of a diff (the line-matching table grows with the product).
std::string UnifiedDiff(const std::string& old_name, const std::string& new_name, const std::string& old_text,
                        const std::string& new_text);
constexpr size_t kMaxDiffLines = 4000;

}  // namespace hearth
