// ScriptedRunner: a ProcessRunner for unit tests of drivers whose commands cannot run here
// (zfs, lvm): each expected argv (joined by single spaces) answers with a recorded result, in
// order; every call is kept for the test to check. An argv nobody expected fails the call
// with "unexpected command: <argv>", so a driver that runs anything else is caught.
// Not thread-safe (tests call from one thread).
#pragma once

#include <unistd.h>

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "core/strings.h"
#include "sys/process.h"

namespace hearth {

class ScriptedRunner final : public ProcessRunner {
 public:
  struct Step {
    std::string argv;  // joined by ' '
    ProcessResult result;
    // Runs with the call's options (e.g. writes a stream into stdout_fd).
    std::function<void(const ProcessOptions&)> effect;
  };
  // Expects `argv` next-or-later (steps are matched in order of addition, first unused match).
  ScriptedRunner& Expect(std::string argv, std::string out = "", int exit_code = 0, std::string err = "",
                         std::function<void(const ProcessOptions&)> effect = nullptr) {
    ProcessResult r;
    r.exit_code = exit_code;
    r.out = std::move(out);
    r.err = std::move(err);
    steps_.push_back({std::move(argv), std::move(r), std::move(effect)});
    return *this;
  }
  Result<ProcessResult> Run(const std::vector<std::string>& argv, const ProcessOptions& options) override {
    std::string joined = Join(argv, " ");
    calls_.push_back(joined);
    for (auto it = steps_.begin(); it != steps_.end(); ++it) {
      if (it->argv != joined) continue;
      Step step = std::move(*it);
      steps_.erase(it);
      if (step.effect) step.effect(options);
      // Line callbacks see the recorded output as the real runner would pass it.
      for (auto [text, cb] : {std::pair{&step.result.out, &options.on_stdout_line},
                              std::pair{&step.result.err, &options.on_stderr_line}})
        if (*cb)
          for (const auto& line : Split(*text, '\n'))
            if (!line.empty()) (*cb)(line);
      return step.result;
    }
    return Fail(Unavailable("unexpected command: " + joined));
  }
  Result<int> SpawnDetached(const std::vector<std::string>& argv, const std::string&) override {
    return Fail(Unavailable("unexpected detached command: " + Join(argv, " ")));
  }
  const std::vector<std::string>& calls() const { return calls_; }
  // Expected steps nobody ran.
  std::vector<std::string> Unused() const {
    std::vector<std::string> out;
    for (const auto& s : steps_) out.push_back(s.argv);
    return out;
  }

 private:
  std::deque<Step> steps_;
  std::vector<std::string> calls_;
};

}  // namespace hearth
