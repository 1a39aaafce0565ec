#include "api/multipart.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>
#include <string_view>

#include "core/strings.h"

namespace hearth {
namespace {

struct Mapping {
  int fd = -1;
  void* data = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (data != MAP_FAILED) munmap(data, size);
    if (fd >= 0) close(fd);
  }
};

std::string HeaderParam(const std::string& header, const std::string& name) {
  // name="value" or name=value
  size_t pos = 0;
  while ((pos = header.find(name + "=", pos)) != std::string::npos) {
    if (pos > 0 && header[pos - 1] != ' ' && header[pos - 1] != ';') {
      pos += name.size();
      continue;
    }
    size_t start = pos + name.size() + 1;
    if (start < header.size() && header[start] == '"') {
      size_t end = header.find('"', start + 1);
      return header.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
    }
    size_t end = header.find(';', start);
    return std::string(Trim(header.substr(start, end == std::string::npos ? std::string::npos : end - start)));
  }
  return "";
}

}  // namespace

Result<MultipartForm> ParseMultipartFile(const std::string& path, const std::string& content_type) {
  if (!StartsWith(ToLower(content_type), "multipart/form-data"))
    return Fail(InvalidArgument("upload must be multipart/form-data"));
  std::string boundary = HeaderParam(content_type, "boundary");
  if (boundary.empty()) return Fail(InvalidArgument("multipart body without boundary"));
  Mapping m;
  m.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (m.fd < 0) return Fail(Internal("open upload: " + std::string(strerror(errno))));
  struct stat st;
  fstat(m.fd, &st);
  m.size = static_cast<size_t>(st.st_size);
  if (m.size == 0) return Fail(InvalidArgument("empty upload"));
  m.data = mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, m.fd, 0);
  if (m.data == MAP_FAILED) return Fail(Internal("mmap upload: " + std::string(strerror(errno))));
  std::string_view body(static_cast<const char*>(m.data), m.size);
  std::string delim = "--" + boundary;
  std::string next_delim = "\r\n" + delim;
  std::boyer_moore_horspool_searcher searcher(next_delim.begin(), next_delim.end());

  MultipartForm form;
  if (!StartsWith(body, delim)) return Fail(InvalidArgument("multipart body does not start with its boundary"));
  size_t pos = delim.size();
  while (true) {
    if (body.substr(pos, 2) == "--") break;  // closing delimiter
    if (body.substr(pos, 2) != "\r\n") return Fail(InvalidArgument("malformed multipart delimiter"));
    pos += 2;
    size_t headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string_view::npos) return Fail(InvalidArgument("malformed multipart part headers"));
    std::string headers(body.substr(pos, headers_end - pos));
    size_t data_start = headers_end + 4;
    auto it = std::search(body.begin() + static_cast<long>(data_start), body.end(), searcher);
    if (it == body.end()) return Fail(InvalidArgument("multipart body is truncated (no closing boundary)"));
    size_t data_end = static_cast<size_t>(it - body.begin());
    std::string disposition;
    for (const auto& line : Split(headers, '\n')) {
      std::string l(Trim(line));
      if (StartsWith(ToLower(l), "content-disposition:")) disposition = l.substr(20);
    }
    std::string name = HeaderParam(disposition, "name");
    std::string filename = HeaderParam(disposition, "filename");
    if (name.empty()) return Fail(InvalidArgument("multipart part without a name"));
    if (!filename.empty() || disposition.find("filename=") != std::string::npos) {
      form.files.push_back({name, filename, data_start, data_end - data_start});
    } else {
      if (data_end - data_start > 64 * 1024) return Fail(FieldError(name, "form field too large"));
      form.fields[name] = std::string(body.substr(data_start, data_end - data_start));
    }
    pos = data_end + next_delim.size();
  }
  return form;
}

Status CopyFileRange(const std::string& src, uint64_t offset, uint64_t size, const std::string& dst,
                     bool punch_source) {
  int in = open(src.c_str(), (punch_source ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (in < 0) return Fail(Internal("open " + src + ": " + strerror(errno)));
  int out = open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int e = errno;
    close(in);
    return Fail(Internal("create " + dst + ": " + strerror(e)));
  }
  loff_t off_in = static_cast<loff_t>(offset);
  uint64_t left = size;
  Status result = Ok();
  while (left > 0) {
    loff_t chunk_start = off_in;
    size_t want = std::min<uint64_t>(left, 8 << 20);
    ssize_t n = copy_file_range(in, &off_in, out, nullptr, want, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)) {
      // Another kind of file system, such as a storage on its own disk: kernels since 5.19 refuse
      // copy_file_range across file system types, so copy through a buffer.
      static thread_local std::vector<char> buf(1 << 20);
      ssize_t r = pread(in, buf.data(), std::min(want, buf.size()), off_in);
      if (r < 0 && errno == EINTR) continue;
      n = r;
      for (ssize_t done = 0; r > 0 && done < r;) {
        ssize_t w = write(out, buf.data() + done, static_cast<size_t>(r - done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          n = -1;
          break;
        }
        done += w;
      }
      if (n > 0) off_in += n;
    }
    if (n <= 0) {
      result = Fail(Internal("copy upload: " + std::string(n < 0 ? strerror(errno) : "short copy")));
      break;
    }
    left -= static_cast<uint64_t>(n);
    if (punch_source) (void)fallocate(in, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, chunk_start, n);
  }
  if (result && fsync(out) != 0) result = Fail(Internal("fsync upload: " + std::string(strerror(errno))));
  close(in);
  close(out);
  if (!result) unlink(dst.c_str());
  return result;
}

}  // namespace hearth
