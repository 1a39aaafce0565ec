// Result<T>: a value or an Error. tl::expected mirrors C++23 std::expected, so moving to
// the standard type later is mostly this alias.
#pragma once

#include <tl/expected.hpp>

#include "core/error.h"

namespace hearth {

template <typename T>
using Result = tl::expected<T, Error>;

using Status = Result<void>;

inline tl::unexpected<Error> Fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

inline Status Ok() { return {}; }

}  // namespace hearth

// Propagates an error from an expression returning Result<...>.
#define HEARTH_TRY(expr)                                   \
  do {                                                     \
    auto&& hearth_try_result_ = (expr);                    \
    if (!hearth_try_result_) return ::hearth::Fail(std::move(hearth_try_result_.error())); \
  } while (0)

#define HEARTH_CONCAT_INNER(a, b) a##b
#define HEARTH_CONCAT(a, b) HEARTH_CONCAT_INNER(a, b)
// Declares `lhs` from a Result<T>'s value, or returns its error.
#define HEARTH_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto HEARTH_CONCAT(hearth_r_, __LINE__) = (expr);                          \
  if (!HEARTH_CONCAT(hearth_r_, __LINE__))                                   \
    return ::hearth::Fail(std::move(HEARTH_CONCAT(hearth_r_, __LINE__).error())); \
  lhs = std::move(*HEARTH_CONCAT(hearth_r_, __LINE__))
