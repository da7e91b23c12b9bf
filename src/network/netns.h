// Reaching into a pod's network namespace from the node: what pods/portforward
// needs (the kubelet's port-forward dials the port on the pod's loopback, so
// servers bound to 127.0.0.1 in the pod are reachable too), and what setting
// up the pod's interface needs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace kiso::network {

// Runs `work` in a short-lived thread inside the network namespace at
// `netns_path` (setns moves only the calling thread; a socket made there stays
// in that namespace whichever thread uses it later, and so do /proc/sys/net
// files opened there). NotFound when the namespace is not there (no file, or
// one that is not a network namespace's).
Status RunInNamespace(const std::string& netns_path, const std::function<Status()>& work);

// A TCP connection to 127.0.0.1:`port` inside the network namespace at
// `netns_path` (a bind-mounted namespace file). The caller owns the socket.
// Unavailable with the reason when nothing accepts it.
Result<int> DialInNamespace(const std::string& netns_path, uint16_t port);

}  // namespace kiso::network
