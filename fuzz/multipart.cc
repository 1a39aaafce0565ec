// Multipart upload bodies (ISO, image and snippet uploads), parsed from the file the body
// was streamed to. Input: Content-Type header, '\0', body. Invariant: every part lies
// inside the body.
#include <fcntl.h>
#include <unistd.h>

#include "api/multipart.h"
#include "fuzz_common.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = fuzz::Fields(fuzz::AsText(data, size), 2);
  static const std::string path = "/dev/shm/hearth-fuzz-multipart-" + std::to_string(getpid());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  FUZZ_CHECK(fd >= 0, "temp file");
  FUZZ_CHECK(write(fd, f[1].data(), f[1].size()) == static_cast<ssize_t>(f[1].size()), "temp file write");
  close(fd);
  auto form = ParseMultipartFile(path, f[0]);
  if (form) {
    for (const auto& file : form->files)
      FUZZ_CHECK(file.offset <= f[1].size() && file.size <= f[1].size() - file.offset, "a part lies inside the body");
  }
  return 0;
}
