// Parameter validation against the route schemas (every route's ParamSpecs, and for VM
// config routes every VM key's format). Input: "METHOD /api/path", then '\0'-separated
// "key=value" pairs. Invariants: never throws; what validates is, checked
// again, still valid and unchanged (handlers may re-validate values they store).
#include "api_env.h"

using namespace hearth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = fuzz::Fields(fuzz::AsText(data, size), 64);
  size_t sp = f[0].find(' ');
  if (sp == std::string::npos) return 0;
  auto match = fuzz::Env().router.Match(f[0].substr(0, sp), f[0].substr(sp + 1));
  if (!match) return 0;
  const Route& route = *match->first;
  const auto& path_params = match->second;
  Params params;
  for (size_t i = 1; i < f.size(); ++i) {
    if (f[i].empty()) continue;
    size_t eq = f[i].find('=');
    params.Add(f[i].substr(0, eq), eq == std::string::npos ? "" : f[i].substr(eq + 1));
  }
  if (!ValidateParams(route, path_params, params)) return 0;
  // Validation merged the path's values into `params`, canonical ("0800" -> "800"): the
  // request a handler would re-validate carries those in its path too.
  std::map<std::string, std::string> canonical_path = path_params;
  for (auto& [k, v] : canonical_path)
    if (auto c = params.Get(k)) v = *c;
  Params again = params;
  FUZZ_CHECK(ValidateParams(route, canonical_path, again), "validated parameters validate again");
  FUZZ_CHECK(again.all() == params.all(), "validation is idempotent");
  return 0;
}
