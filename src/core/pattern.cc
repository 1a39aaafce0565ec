#include "core/pattern.h"

#include <re2/re2.h>

#include <cstdio>
#include <cstdlib>

namespace hearth {

Pattern::Pattern(std::string_view regex, bool case_insensitive) {
  RE2::Options options;
  options.set_case_sensitive(!case_insensitive);
  options.set_log_errors(false);
  re_ = std::make_unique<RE2>(re2::StringPiece(regex.data(), regex.size()), options);
  if (!re_->ok()) {
    std::fprintf(stderr, "invalid pattern '%.*s': %s\n", static_cast<int>(regex.size()), regex.data(),
                 re_->error().c_str());
    std::abort();
  }
}

Pattern::~Pattern() = default;

bool Pattern::FullMatch(std::string_view text) const {
  return RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *re_);
}

std::optional<std::vector<std::string>> Pattern::Match(std::string_view text, bool anchored) const {
  int groups = re_->NumberOfCapturingGroups();
  std::vector<re2::StringPiece> pieces(static_cast<size_t>(groups) + 1);
  if (!re_->Match(re2::StringPiece(text.data(), text.size()), 0, text.size(),
                  anchored ? RE2::ANCHOR_BOTH : RE2::UNANCHORED, pieces.data(), groups + 1))
    return std::nullopt;
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(groups));
  for (int i = 1; i <= groups; ++i) out.emplace_back(pieces[i].data() ? std::string(pieces[i]) : std::string());
  return out;
}

std::optional<std::vector<std::string>> Pattern::Capture(std::string_view text) const { return Match(text, true); }
std::optional<std::vector<std::string>> Pattern::Search(std::string_view text) const { return Match(text, false); }

}  // namespace hearth
