// The firewall's compile + apply of a rule set of N rules (default 1,000) against loading
// the same rules with the `nft -f` command, in a network namespace of its own (unshare), so
// the host's rule set is never touched. Needs root.
//
//   build/bench/firewall_bench [rules] [rounds]
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "firewall/compile.h"
#include "firewall/nft_backend.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;

static double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

static double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

static FwInputs Inputs(int n) {
  FwInputs in;
  in.cluster_options = {{"enable", "1"}};
  const char* macros[] = {"SSH", "HTTP", "HTTPS", "DNS", "Ping", "NTP"};
  for (int i = 0; i < n; ++i) {
    FwRule r;
    r.f = {{"type", i % 2 ? "in" : "out"}, {"action", i % 3 ? "ACCEPT" : "DROP"}, {"enable", "1"}};
    if (i % 10 == 0) {
      r.f["macro"] = macros[(i / 10) % 6];
    } else {
      r.f["proto"] = i % 4 ? "tcp" : "udp";
      r.f["dport"] = std::to_string(1000 + i) + (i % 5 == 0 ? ":" + std::to_string(1010 + i) : "");
    }
    r.f["source"] = "10." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ".0/24";
    if (!VerifyFwRule(r, FwEnv::kCluster, {})) {
      std::fprintf(stderr, "rule %d invalid\n", i);
      std::exit(1);
    }
    in.cluster_rules.push_back(r);
  }
  in.local_networks = {"192.168.1.0/24"};
  in.management_ports = {8006, 22};
  return in;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 20;
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("unshare(CLONE_NEWNET) (run as root)");
    return 1;
  }
  FwInputs in = Inputs(n);
  LibNftables nft;
  std::vector<double> compile, apply, total, peer;
  std::string script;
  for (int i = 0; i < rounds; ++i) {
    auto t0 = Clock::now();
    script = CompileFirewall(in);
    auto t1 = Clock::now();
    if (auto done = nft.Run(script); !done) {
      std::fprintf(stderr, "apply: %s\n", done.error().message.c_str());
      return 1;
    }
    auto t2 = Clock::now();
    compile.push_back(Ms(t1 - t0));
    apply.push_back(Ms(t2 - t1));
    total.push_back(Ms(t2 - t0));
  }
  std::string file = "/tmp/hearth-firewall-bench.nft";
  std::ofstream(file) << script;
  for (int i = 0; i < rounds; ++i) {
    auto t0 = Clock::now();
    int rc = std::system(("nft -f " + file).c_str());
    auto t1 = Clock::now();
    if (rc != 0) {
      std::fprintf(stderr, "nft -f failed\n");
      return 1;
    }
    peer.push_back(Ms(t1 - t0));
  }
  std::remove(file.c_str());
  size_t lines = std::count(script.begin(), script.end(), '\n');
  std::printf("firewall rule set: %d rules -> %zu nft lines (%zu bytes), %d rounds, medians\n", n, lines, script.size(), rounds);
  std::printf("%-40s %10s\n", "", "ms");
  std::printf("%-40s %10.2f\n", "hearth compile", Median(compile));
  std::printf("%-40s %10.2f\n", "hearth apply (libnftables, in-process)", Median(apply));
  std::printf("%-40s %10.2f\n", "hearth compile + apply", Median(total));
  std::printf("%-40s %10.2f\n", "peer: nft -f <same script>", Median(peer));
  std::printf("%-40s %10.2f\n", "ratio hearth / nft -f", Median(total) / Median(peer));
  return 0;
}
