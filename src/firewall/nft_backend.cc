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
  std::string error = nft_ctx_get_error_buffer(ctx) ? nft_ctx_get_error_buffer(ctx) : "";
  nft_ctx_free(ctx);
  if (rc == 0) return Ok();
  // nft's message names the line of the script; its first line is the one that matters.
  std::string first(Trim(error.substr(0, error.find('\n'))));
  return Fail(FailedPrecondition("nftables refused the rule set: " + (first.empty() ? "error " + std::to_string(rc) : first)));
}

}  // namespace hearth
