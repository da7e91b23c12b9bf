// Nftables: changes the kernel's nftables, each change one atomic
// transaction (all of it applies, or none). Scripts go through Debian's
// libnftables; a Transaction (rules.h) goes straight to the kernel as one
// netlink batch built with libnftnl, which skips libnftables' read of the
// ruleset before every command (tens of milliseconds at 10,000 Services).
// Not thread-safe: one caller at a time.
//
// The libraries (libnftables with libnftnl, libxtables, libjansson and
// libgmp; libnetfilter_conntrack for conntrack.h) are in a plugin,
// kiso-netfilter.so, loaded by the first change, so a process that changes
// no rules (an API server) never maps them (see common/plugin.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/plugin.h"
#include "common/status.h"
#include "network/proxy/rules.h"

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

  // What does the work, in the plugin: the same three calls.
  class Kernel {
   public:
    virtual ~Kernel() = default;
    virtual Status Run(const std::string& script) = 0;
    virtual Status Apply(std::string_view table, const Transaction& tx) = 0;
    virtual Result<std::string> List(const std::string& command) = 0;
  };

 private:
  Result<Kernel*> Loaded();

  std::unique_ptr<Kernel> kernel_;  // Made by the first call.
};

}  // namespace kiso::network::proxy

// kiso-netfilter.so's entry point behind Nftables.
KISO_PLUGIN_ENTRY void KisoNewNftables(
    kiso::Result<std::unique_ptr<kiso::network::proxy::Nftables::Kernel>>* out);
