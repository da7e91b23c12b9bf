// Nftables' work, in kiso-netfilter.so (see nftables.h): scripts through
// libnftables, transactions through SendBatch.
#include "network/proxy/nftables.h"

#include <libmnl/libmnl.h>
#include <nftables/libnftables.h>

#include "network/proxy/nftables_netlink.h"

namespace kiso::network::proxy {

namespace {

class LibNftables : public Nftables::Kernel {
 public:
  explicit LibNftables(nft_ctx* ctx) : ctx_(ctx) {
    nft_ctx_buffer_output(ctx_);
    nft_ctx_buffer_error(ctx_);
  }
  ~LibNftables() override {
    nft_ctx_free(ctx_);
    if (netlink_ != nullptr) mnl_socket_close(netlink_);
  }
  LibNftables(const LibNftables&) = delete;
  LibNftables& operator=(const LibNftables&) = delete;

  Status Run(const std::string& script) override {
    int rc = nft_run_cmd_from_buffer(ctx_, script.c_str());
    std::string err = nft_ctx_get_error_buffer(ctx_);
    (void)nft_ctx_get_output_buffer(ctx_);  // Resets it.
    if (rc != 0) {
      while (!err.empty() && err.back() == '\n') err.pop_back();
      return MakeStatus(Code::kInternal, "nftables: {}", err.empty() ? "failed" : err);
    }
    return Status::Ok();
  }

  Status Apply(std::string_view table, const Transaction& tx) override {
    return SendBatch(netlink_, table, tx);
  }

  Result<std::string> List(const std::string& command) override {
    int rc = nft_run_cmd_from_buffer(ctx_, command.c_str());
    std::string out = nft_ctx_get_output_buffer(ctx_);
    std::string err = nft_ctx_get_error_buffer(ctx_);
    if (rc != 0) return MakeStatus(Code::kNotFound, "nftables: {}", err);
    return out;
  }

 private:
  nft_ctx* ctx_;
  mnl_socket* netlink_ = nullptr;  // Opened by the first Apply().
};

}  // namespace

}  // namespace kiso::network::proxy

KISO_PLUGIN_ENTRY void KisoNewNftables(
    kiso::Result<std::unique_ptr<kiso::network::proxy::Nftables::Kernel>>* out) {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) {
    *out = kiso::Status(kiso::Code::kInternal, "nftables: no context (out of memory)");
    return;
  }
  *out = std::unique_ptr<kiso::network::proxy::Nftables::Kernel>(
      std::make_unique<kiso::network::proxy::LibNftables>(ctx));
}
