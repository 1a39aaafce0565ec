#include "cli/trust.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "core/strings.h"
#include "sys/files.h"
#include "sys/posix/posix_file_system.h"

namespace hearth {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// "host:port fingerprint" per line; '#' comments.
std::string KnownFingerprint(const std::string& host_port) {
  auto text = ReadFile(KnownHostsPath());
  if (!text) return "";
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    auto parts = SplitAny(line, " \t");
    if (parts.size() >= 2 && parts[0] == host_port) return parts[1];
  }
  return "";
}

void Remember(const std::string& host_port, const std::string& fingerprint) {
  std::string path = KnownHostsPath();
  std::string text = ReadFile(path).value_or("");
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += host_port + " " + fingerprint + "\n";
  (void)MakeDirs(path.substr(0, path.rfind('/')), 0700);
  PosixFileSystem fs;
  if (auto st = WriteFileAtomic(fs, path, text, 0600); !st)
    std::cerr << "warning: could not remember the certificate in " << path << ": " << st.error().message << "\n";
  else
    std::cerr << "Remembered " << host_port << " in " << path << ".\n";
}

bool AskAtTerminal(const std::string& host_port, const std::string& fingerprint) {
  if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) return false;
  std::cerr << "The authenticity of hearth server '" << host_port << "' can't be established.\n"
            << "Its certificate's SHA-256 fingerprint is\n  " << fingerprint << "\n"
            << "Compare it with the fingerprint `hearth serve` logged when it started (or\n"
            << "`hearth api get /nodes` on the server itself).\n"
            << "Are you sure you want to continue connecting (yes/no)? " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return ToLower(Trim(answer)) == "yes";
}

}  // namespace

std::string KnownHostsPath() {
  std::string explicit_path = Env("HEARTH_KNOWN_HOSTS");
  if (!explicit_path.empty()) return explicit_path;
  std::string home = Env("HOME");
  return (home.empty() ? std::string("/root") : home) + "/.config/hearth/known_hosts";
}

TlsTrust CliTrust(bool insecure, const std::string& fingerprint) {
  TlsTrust t;
  t.insecure = insecure || Env("HEARTH_INSECURE") == "1";
  t.fingerprint = fingerprint;
  t.on_unverified = [](const std::string& host_port, const std::string& fp) {
    std::string known = KnownFingerprint(host_port);
    if (!known.empty()) {
      if (ToUpper(known) == ToUpper(fp)) return true;
      std::cerr << "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                << "@  WARNING: THE SERVER'S CERTIFICATE HAS CHANGED!          @\n"
                << "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                << "Someone could be eavesdropping on you (or the server got a new certificate).\n"
                << host_port << " now presents " << fp << ",\nbut " << KnownHostsPath() << " has " << known << ".\n"
                << "Remove that line if the change is expected.\n";
      return false;
    }
    if (!AskAtTerminal(host_port, fp)) return false;
    Remember(host_port, fp);
    return true;
  };
  return t;
}

}  // namespace hearth
