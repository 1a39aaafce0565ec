#include "tasks/task_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/strings.h"
#include "sys/files.h"

namespace hearth {

std::string TaskLogDir::PathFor(const std::string& upid) const {
  // UPID:node:PID:PSTART:STARTTIME:... — bucket by the last digit of STARTTIME.
  auto parts = Split(upid, ':');
  std::string bucket = parts.size() > 4 && !parts[4].empty() ? std::string(1, parts[4].back()) : "0";
  return root_ + "/" + bucket + "/" + upid;
}

Result<int> TaskLogDir::Create(const std::string& upid) const {
  std::string path = PathFor(upid);
  // The 16 bucket directories are made once, not checked on every task.
  std::call_once(*buckets_made_, [&] {
    for (const char* b : {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"})
      (void)MakeDirs(root_ + "/" + b);
  });
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT) {  // removed behind our back: make it again
    HEARTH_TRY(MakeDirs(path.substr(0, path.rfind('/'))));
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  }
  if (fd < 0) return Fail(Internal("create task log '" + path + "': " + strerror(errno)));
  return fd;
}

Status TaskLogDir::AppendTo(int fd, const std::string& line) {
  // One write per line so concurrent readers never see half a line's worth of a record.
  std::string text;
  text.reserve(line.size() + 1);
  for (char c : line) text += (c == '\n' || c == '\r') ? ' ' : c;
  text += '\n';
  ssize_t w = write(fd, text.data(), text.size());
  if (w != static_cast<ssize_t>(text.size())) return Fail(Internal("write task log: short write"));
  return Ok();
}

Status TaskLogDir::Append(const std::string& upid, const std::string& line) const {
  std::string path = PathFor(upid);
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return Fail(Internal("open task log '" + path + "': " + strerror(errno)));
  Status st = AppendTo(fd, line);
  close(fd);
  return st;
}

Result<std::pair<std::vector<std::string>, size_t>> TaskLogDir::Read(const std::string& upid, size_t start,
                                                                     size_t limit) const {
  std::ifstream f(PathFor(upid));
  if (!f) return Fail(NotFound("no such task"));
  std::vector<std::string> lines;
  std::string line;
  size_t total = 0;
  while (std::getline(f, line)) {
    if (total >= start && (limit == 0 || lines.size() < limit)) lines.push_back(line);
    ++total;
  }
  return std::make_pair(std::move(lines), total);
}

void TaskLogDir::Remove(const std::string& upid) const { ::unlink(PathFor(upid).c_str()); }

std::string ExitStatusFromLastLine(const std::string& line) {
  if (line == "TASK OK") return "OK";
  if (StartsWith(line, "TASK WARNINGS: ")) return "WARNINGS: " + line.substr(15);
  if (StartsWith(line, "TASK ERROR: ")) return line.substr(12);
  return "unexpected status";
}

}  // namespace hearth
