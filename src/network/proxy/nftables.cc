#include "network/proxy/nftables.h"

#include <libmnl/libmnl.h>
#include <nftables/libnftables.h>

namespace kiso::network::proxy {

Nftables::Nftables() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
  nft_ctx_buffer_output(ctx_);
  nft_ctx_buffer_error(ctx_);
}

Nftables::~Nftables() {
  nft_ctx_free(ctx_);
  if (netlink_ != nullptr) mnl_socket_close(netlink_);
}

Status Nftables::Run(const std::string& script) {
  int rc = nft_run_cmd_from_buffer(ctx_, script.c_str());
  std::string err = nft_ctx_get_error_buffer(ctx_);
  (void)nft_ctx_get_output_buffer(ctx_);  // Resets it.
  if (rc != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return MakeStatus(Code::kInternal, "nftables: {}", err.empty() ? "failed" : err);
  }
  return Status::Ok();
}

Result<std::string> Nftables::List(const std::string& command) {
  int rc = nft_run_cmd_from_buffer(ctx_, command.c_str());
  std::string out = nft_ctx_get_output_buffer(ctx_);
  std::string err = nft_ctx_get_error_buffer(ctx_);
  if (rc != 0) return MakeStatus(Code::kNotFound, "nftables: {}", err);
  return out;
}

}  // namespace kiso::network::proxy
