// Pattern: a regular expression for matching user input, backed by RE2.
//
// Why not std::regex: libstdc++'s matcher recurses once per input character, so a long
// value (tens of kilobytes) overflows the stack and kills the daemon. RE2 matches in time
// linear in the input with bounded memory and no recursion on the input, whatever its length.
// RE2 syntax has no backreferences or lookaround; callers check such things by hand.
//
// A Pattern is compiled once (usually a function-local static) and is immutable afterwards:
// every method is const and thread-safe. An invalid pattern is a programming error and
// aborts at construction.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace hearth {

class Pattern {
 public:
  explicit Pattern(std::string_view regex, bool case_insensitive = false);
  ~Pattern();
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;

  // True if the whole of `text` matches.
  bool FullMatch(std::string_view text) const;
  // The capture groups (1..n; an unmatched group is "") if the whole of `text` matches.
  std::optional<std::vector<std::string>> Capture(std::string_view text) const;
  // Like Capture, but the match may start and end anywhere in `text`.
  std::optional<std::vector<std::string>> Search(std::string_view text) const;

 private:
  std::optional<std::vector<std::string>> Match(std::string_view text, bool anchored) const;
  std::unique_ptr<re2::RE2> re_;
};

}  // namespace hearth
