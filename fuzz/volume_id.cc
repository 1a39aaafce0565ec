// Volume ids ("local:100/vm-100-disk-0.qcow2", "local:iso/x.iso"), dir volume names, disk
// names and upload file names: all reach file paths. Invariants: a parsed volume id prints
// back to itself; a dir volume's relative path never leaves its directory.
#include <algorithm>

#include "fuzz_common.h"
#include "model/volume_id.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  if (auto id = ParseVolumeId(text)) {
    FUZZ_CHECK(id->ToString() == text, "a volume id prints back to itself");
    if (auto dv = ParseDirVolname(id->volname)) {
      std::string rel = dv->RelativePath();
      FUZZ_CHECK(!rel.empty() && rel[0] != '/', "a volume path is relative");
      size_t start = 0;
      while (start <= rel.size()) {  // every component is a real name: not "", ".", ".."
        size_t end = std::min(rel.find('/', start), rel.size());
        std::string_view part(rel.data() + start, end - start);
        FUZZ_CHECK(!part.empty() && part != "." && part != "..", "a volume path stays in its directory");
        start = end + 1;
      }
    }
  }
  (void)ParseDirVolname(text);
  (void)ParseDiskName(text);
  std::string normalized = NormalizeContentFilename(text);
  FUZZ_CHECK(normalized.find('/') == std::string::npos, "an upload name has no slash");
  for (auto c : {ContentType::kIso, ContentType::kImport, ContentType::kVztmpl, ContentType::kSnippets})
    (void)CheckUploadFileName(c, normalized);
  (void)ParseContentType(text);
  return 0;
}
