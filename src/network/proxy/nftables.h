// Nftables: runs nft scripts through Debian's libnftables, each script one
// atomic transaction (all of it applies, or none). Not thread-safe: one
// caller at a time.
#pragma once

#include <string>

#include "common/status.h"

struct nft_ctx;

namespace kiso::network::proxy {

class Nftables {
 public:
  Nftables();
  ~Nftables();
  Nftables(const Nftables&) = delete;
  Nftables& operator=(const Nftables&) = delete;

  // Applies `script`; the error is nft's own message.
  Status Run(const std::string& script);
  // Runs a listing command ("list table ip kiso") and returns its output.
  Result<std::string> List(const std::string& command);

 private:
  nft_ctx* ctx_;
};

}  // namespace kiso::network::proxy
