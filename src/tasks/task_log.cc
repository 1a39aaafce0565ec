#include "tasks/task_log.h"

#include "core/strings.h"

#include <algorithm>

namespace hearth {

std::string TaskLogDir::PathFor(const std::string& upid) const {
  // UPID:node:PID:PSTART:STARTTIME:... — bucket by the last digit of STARTTIME.
  auto parts = Split(upid, ':');
  std::string bucket = parts.size() > 4 && !parts[4].empty() ? std::string(1, parts[4].back()) : "0";
  return root_ + "/" + bucket + "/" + upid;
}

Result<std::unique_ptr<WritableFile>> TaskLogDir::Create(const std::string& upid) const {
  std::string path = PathFor(upid);
  // The 16 bucket directories are made once, not checked on every task.
  std::call_once(*buckets_made_, [&] {
    for (const char* b : {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"})
      (void)fs_.MakeDirs(root_ + "/" + b);
  });
  auto file = fs_.Open(path, OpenMode::kAppend);
  if (!file && file.error().code == ErrorCode::kNotFound) {  // removed behind our back: make it again
    HEARTH_TRY(fs_.MakeDirs(ParentDir(path)));
    file = fs_.Open(path, OpenMode::kAppend);
  }
  if (!file) return Fail(file.error().WithContext("task log"));
  return std::move(*file);
}

Status TaskLogDir::AppendTo(WritableFile& file, const std::string& line, bool new_line_first) {
  // One write per line so concurrent readers never see half a line's worth of a record.
  std::string text = new_line_first ? "\n" : "";
  text.reserve(line.size() + 2);
  for (char c : line) text += (c == '\n' || c == '\r') ? ' ' : c;
  text += '\n';
  return file.Append(text);
}

Status TaskLogDir::Append(const std::string& upid, const std::string& line) const {
  std::string path = PathFor(upid);
  // Used for the verdict of a task a crash cut off: its last line may be cut off too.
  HEARTH_ASSIGN_OR_RETURN(std::string text, fs_.Read(path, 64 << 20));
  HEARTH_ASSIGN_OR_RETURN(auto file, fs_.Open(path, OpenMode::kAppend));
  HEARTH_TRY(AppendTo(*file, line, !text.empty() && text.back() != '\n'));
  return file->Close();
}

Result<std::pair<std::vector<std::string>, size_t>> TaskLogDir::Read(const std::string& upid, size_t start,
                                                                     size_t limit) const {
  // Streamed in 64 KiB pieces: a client polling a 16 MiB log costs 64 KiB plus the lines it
  // asked for, not the whole log per request. A line longer than kMaxLine (only in a file
  // someone else wrote) is cut there rather than growing without bound.
  constexpr size_t kPiece = 64 << 10, kMaxLine = 1 << 20;
  auto file = fs_.OpenSequential(PathFor(upid));
  if (!file) {
    if (file.error().code == ErrorCode::kNotFound) return Fail(NotFound("no such task"));
    return Fail(file.error());
  }
  std::vector<std::string> lines;
  size_t total = 0;
  std::string line, piece;
  bool pending = false;  // a line has begun (its text may be empty)
  auto finish = [&] {
    if (total >= start && (limit == 0 || lines.size() < limit)) lines.push_back(std::move(line));
    line.clear();
    ++total;
    pending = false;
  };
  for (;;) {
    HEARTH_TRY((*file)->Read(kPiece, &piece));
    if (piece.empty()) break;
    for (size_t pos = 0; pos < piece.size();) {
      size_t nl = piece.find('\n', pos);
      size_t end = nl == std::string::npos ? piece.size() : nl;
      bool wanted = total >= start && (limit == 0 || lines.size() < limit);
      if (wanted && line.size() < kMaxLine) line.append(piece, pos, std::min(end - pos, kMaxLine - line.size()));
      pending = true;
      if (nl == std::string::npos) break;
      finish();
      pos = nl + 1;
    }
  }
  if (pending) finish();  // a last line without its newline (a task still writing)
  return std::make_pair(std::move(lines), total);
}

void TaskLogDir::Remove(const std::string& upid) const { (void)fs_.Remove(PathFor(upid)); }

std::string ExitStatusFromLastLine(const std::string& line) {
  if (line == "TASK OK") return "OK";
  if (StartsWith(line, "TASK WARNINGS: ")) return "WARNINGS: " + line.substr(15);
  if (StartsWith(line, "TASK ERROR: ")) return line.substr(12);
  return "unexpected status";
}

}  // namespace hearth
