// Conntrack cleanup for UDP Services (kube-proxy's): UDP has no connection to
// end, so a client that keeps sending from one port (a resolver, a game, a
// metrics agent) stays translated by its conntrack entry to the endpoint it
// first reached, also after that endpoint left the Service. When endpoints
// leave, their UDP entries are deleted, and the client's next datagram is
// balanced anew. TCP needs nothing: a gone endpoint's connections reset.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace kiso::network::proxy {

// Deletes every IPv4 UDP conntrack entry destination-NATed to ip:port (its
// replies come from there); entries not NATed (a client talking to the pod
// directly) stay. Returns how many were deleted. Needs CAP_NET_ADMIN.
Result<int> DeleteUdpFlowsTo(const std::string& ip, uint16_t port);

}  // namespace kiso::network::proxy
