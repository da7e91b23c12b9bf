// Reaching into a pod's network namespace from the node: what pods/portforward
// needs (the kubelet's port-forward dials the port on the pod's loopback, so
// servers bound to 127.0.0.1 in the pod are reachable too).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace kiso::network {

// A TCP connection to 127.0.0.1:`port` inside the network namespace at
// `netns_path` (a bind-mounted namespace file). The caller owns the socket.
// Unavailable with the reason when nothing accepts it.
Result<int> DialInNamespace(const std::string& netns_path, uint16_t port);

}  // namespace kiso::network
