#include "network/policy/enforcer.h"

#include <fmt/format.h>

#include "network/policy/ebpf_enforcer.h"
#include "network/policy/nftables_enforcer.h"
#include "network/proxy/nftables.h"

namespace kiso::network::policy {

Result<std::unique_ptr<Enforcer>> NewEnforcer(std::string_view name,
                                              const EnforcerOptions& options) {
  if (name == "nftables") return NewNftablesEnforcer(options);
  if (name == "ebpf") return NewEbpfEnforcer(options);
  return MakeStatus(Code::kInvalidArgument,
                    "network policy: no enforcer {:?} (nftables, ebpf or none)", name);
}

Status RemoveAll(const EnforcerOptions& options, std::string_view keep) {
  Status table = Status::Ok(), bpf = Status::Ok();
  if (keep != "nftables") {
    proxy::Nftables nft;
    table = nft.Run(
        fmt::format("add table ip {0}\ndelete table ip {0}\n", PolicyTable(options.bridge)));
  }
  if (keep != "ebpf") bpf = DetachEbpf(options.bridge);
  return table.ok() ? bpf : table;
}

}  // namespace kiso::network::policy
