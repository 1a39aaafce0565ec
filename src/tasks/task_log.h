// Task logs: one plain-text file per task, named by its UPID (see docs/design/tasks.md for
// the format). Lines are appended as the task runs; the last line is the verdict:
// "TASK OK", "TASK WARNINGS: <n>" or "TASK ERROR: <message>".
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "sys/file_system.h"

namespace hearth {

// Thread-safe; files go through `fs` (so tests can make the disk fail under a task).
class TaskLogDir {
 public:
  TaskLogDir(FileSystem& fs, std::string root) : fs_(fs), root_(std::move(root)) {}
  // <root>/<last hex digit of the UPID's start time>/<UPID>
  std::string PathFor(const std::string& upid) const;
  // Creates the log, open for appending.
  Result<std::unique_ptr<WritableFile>> Create(const std::string& upid) const;
  Status Append(const std::string& upid, const std::string& line) const;
  // Appends one line to a log from Create (newlines flattened; one write, O_APPEND);
  // `new_line_first` ends a line that a failed write left unfinished.
  static Status AppendTo(WritableFile& file, const std::string& line, bool new_line_first = false);
  // Lines [start, start+limit) (limit 0 = all) and the total line count.
  Result<std::pair<std::vector<std::string>, size_t>> Read(const std::string& upid, size_t start, size_t limit) const;
  void Remove(const std::string& upid) const;

 private:
  FileSystem& fs_;
  std::string root_;
  std::unique_ptr<std::once_flag> buckets_made_ = std::make_unique<std::once_flag>();
};

// The exitstatus Proxmox derives from a finished log: "OK", "WARNINGS: n", the error text,
// or "unexpected status".
std::string ExitStatusFromLastLine(const std::string& line);

}  // namespace hearth
