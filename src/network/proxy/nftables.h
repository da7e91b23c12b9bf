// Nftables: changes the kernel's nftables, each change one atomic
// transaction (all of it applies, or none). Scripts go through Debian's
// libnftables; a Transaction (rules.h) goes straight to the kernel as one
// netlink batch built with libnftnl, which skips libnftables' read of the
// ruleset before every command (tens of milliseconds at 10,000 Services).
// Not thread-safe: one caller at a time.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "network/proxy/rules.h"

struct nft_ctx;
struct mnl_socket;

namespace kiso::network::proxy {

class Nftables {
 public:
  Nftables();
  ~Nftables();
  Nftables(const Nftables&) = delete;
  Nftables& operator=(const Nftables&) = delete;

  // Applies `script`; the error is nft's own message.
  Status Run(const std::string& script);
  // Applies `tx` to the existing ip-family table `table` in one netlink
  // batch; the error names the first message the kernel refused.
  Status Apply(std::string_view table, const Transaction& tx);
  // Runs a listing command ("list table ip kiso") and returns its output.
  Result<std::string> List(const std::string& command);

 private:
  nft_ctx* ctx_;
  mnl_socket* netlink_ = nullptr;  // Opened by the first Apply().
};

}  // namespace kiso::network::proxy
