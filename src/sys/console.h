// Terminal helpers shared by the command-line verbs.
#pragma once

#include <string>

#include "core/error.h"

namespace hearth {

// Reads one line: from stdin as is when `from_stdin` or stdin is not a terminal, otherwise
// after printing `prompt` with echo turned off.
std::string ReadSecret(bool from_stdin, const std::string& prompt);

// Prints "error: <message>" and each field error to stderr; returns the exit code to use
// (2 for invalid input, 1 otherwise).
int ReportError(const Error& e);

}  // namespace hearth
