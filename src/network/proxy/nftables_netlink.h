// The netlink half of kiso-netfilter.so (see nftables.h): a Transaction sent
// to the kernel as one nf_tables batch.
#pragma once

#include <string_view>

#include "common/status.h"
#include "network/proxy/rules.h"

struct mnl_socket;

namespace kiso::network::proxy {

// Applies `tx` to the existing ip-family table `table` in one batch over
// `netlink`, which it opens the first time (null: not yet). The error names
// the first message the kernel refused.
Status SendBatch(mnl_socket*& netlink, std::string_view table, const Transaction& tx);

}  // namespace kiso::network::proxy
