#include "sys/console.h"

#include <termios.h>
#include <unistd.h>

#include <iostream>

namespace hearth {

std::string ReadSecret(bool from_stdin, const std::string& prompt) {
  std::string line;
  if (from_stdin || !isatty(STDIN_FILENO)) {
    std::getline(std::cin, line);
    return line;
  }
  std::cerr << prompt;
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::getline(std::cin, line);
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::cerr << "\n";
  return line;
}

int ReportError(const Error& e) {
  std::cerr << "error: " << e.message << "\n";
  for (const auto& [k, v] : e.fields) std::cerr << "  " << k << ": " << v << "\n";
  return e.code == ErrorCode::kInvalidArgument ? 2 : 1;
}

}  // namespace hearth
