// Reverter: undo steps for a multi-step side effect. Add an undo after each step that
// succeeded; call Commit() when all steps succeeded. If the Reverter is destroyed without
// Commit(), the undos run in reverse order. (After incus shared/revert.)
//
// The undos run in the Reverter's destructor, so everything they capture by reference must
// be declared before the Reverter (it is destroyed after them). ASan found the opposite
// order in create and clone: a failed create read its list of allocated disks after the
// list was gone.
#pragma once

#include <functional>
#include <vector>

namespace hearth {

class Reverter {
 public:
  Reverter() = default;
  Reverter(const Reverter&) = delete;
  Reverter& operator=(const Reverter&) = delete;
  ~Reverter() {
    if (committed_) return;
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
  }
  void Add(std::function<void()> undo) { undo_.push_back(std::move(undo)); }
  void Commit() { committed_ = true; }

 private:
  std::vector<std::function<void()>> undo_;
  bool committed_ = false;
};

}  // namespace hearth
