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

Status TaskLogDir::Create(const std::string& upid) const {
  std::string path = PathFor(upid);
  HEARTH_TRY(MakeDirs(path.substr(0, path.rfind('/'))));
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(Internal("create task log '" + path + "': " + strerror(errno)));
  close(fd);
  return Ok();
}

Status TaskLogDir::Append(const std::string& upid, const std::string& line) const {
  std::string path = PathFor(upid);
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return Fail(Internal("open task log '" + path + "': " + strerror(errno)));
  // One write per line so concurrent readers never see half a line's worth of a record.
  std::string text;
  for (char c : line) text += (c == '\n' || c == '\r') ? ' ' : c;
  text += '\n';
  ssize_t w = write(fd, text.data(), text.size());
  close(fd);
  if (w != static_cast<ssize_t>(text.size())) return Fail(Internal("write task log: short write"));
  return Ok();
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
