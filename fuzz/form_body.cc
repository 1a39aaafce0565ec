// Request targets, query strings and bodies as the API reads them: the path split and
// percent-decoded, application/x-www-form-urlencoded and JSON bodies turned into Params.
// Input: content type, target, body (separated by '\0').
#include "api/params.h"
#include "core/strings.h"
#include "fuzz_common.h"
#include "http/http.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = fuzz::Fields(fuzz::AsText(data, size), 3);
  auto target = SplitRequestTarget(f[1]);
  if (!target) return 0;
  HttpRequest req;
  req.method = "POST";
  req.target = f[1];
  req.headers.emplace_back("content-type", f[0]);
  req.body = f[2];
  auto params = ExtractParams(req, target->query);
  if (params) {
    for (const auto& [k, vs] : params->all()) {
      FUZZ_CHECK(!vs.empty(), "a parameter has a value");
      FUZZ_CHECK(IsValidUtf8(k), "parameter names are valid UTF-8 without NUL");
      for (const auto& v : vs) FUZZ_CHECK(IsValidUtf8(v), "parameter values are valid UTF-8 without NUL");
      (void)params->Int(k);
      (void)params->Bool(k);
    }
  }
  Params q;
  (void)DecodeUrlEncoded(f[2], q);
  return 0;
}
