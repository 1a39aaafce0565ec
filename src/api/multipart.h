// multipart/form-data parsing for uploads, straight from the file the HTTP server spooled
// the body to (uploads may be gigabytes: the file is mapped, never read into memory).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/result.h"

namespace hearth {

struct MultipartFile {
  std::string field;     // form field name ("filename" for PVE uploads)
  std::string filename;  // the part's filename
  uint64_t offset = 0;   // where its bytes start in the body file
  uint64_t size = 0;
};

struct MultipartForm {
  std::map<std::string, std::string> fields;  // small text fields
  std::vector<MultipartFile> files;
};

// `content_type` carries the boundary. Fails naming what is malformed.
Result<MultipartForm> ParseMultipartFile(const std::string& body_path, const std::string& content_type);

// Copies [offset, offset+size) of `src` into a new file `dst` (fails if `dst` exists).
// With `punch_source`, each copied chunk is punched out of `src` right away, so the copy
// never needs much more space than the data itself.
Status CopyFileRange(const std::string& src, uint64_t offset, uint64_t size, const std::string& dst,
                     bool punch_source = false);

}  // namespace hearth
