#include "firewall/nft_backend.h"

#include <nftables/libnftables.h>

#include "core/strings.h"

namespace hearth {

Status LibNftables::Execute(const std::string& script, bool dry_run) {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return Fail(Internal("nftables: cannot create a context"));
  nft_ctx_set_dry_run(ctx, dry_run);
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  int rc = nft_run_cmd_from_buffer(ctx, script.c_str());
  // Each get_*_buffer call hands out the buffer and rewinds it: read each once.
  const char* err = nft_ctx_get_error_buffer(ctx);
  std::string error = err ? err : "";
  if (Trim(error).empty()) {
    const char* out = nft_ctx_get_output_buffer(ctx);
    error = out ? out : "";
  }
  nft_ctx_free(ctx);
  if (rc == 0) return Ok();
  // nft's message: "<file>:<line>:<cols>: Error: <what>", then the offending line and a
  // marker line. Keep the what and the line (trimmed), which name the rule.
  std::vector<std::string> lines;
  for (const auto& l : Split(error, '\n')) {
    std::string t(Trim(l));
    if (t.empty() || t.find_first_not_of("^~ ") == std::string::npos) continue;
    if (auto at = t.find("Error: "); at != std::string::npos) t = t.substr(at + 7);
    lines.push_back(t);
    if (lines.size() == 2) break;
  }
  std::string what = lines.empty() ? "error " + std::to_string(rc) : Join(lines, ": ");
  return Fail(FailedPrecondition("nftables refused the rule set: " + what));
}

}  // namespace hearth
