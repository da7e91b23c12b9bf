// The host's own addresses, read from its interfaces (nothing is sent).
#pragma once

#include <string>
#include <vector>

namespace kiso {

// Every IPv4 and IPv6 address of the host's interfaces (numeric, no zone ids).
std::vector<std::string> HostAddresses();

// The host's primary IPv4 address, as K3s picks a node IP: that of the
// interface holding the default route, else the first non-loopback address
// of an interface that is up; "" when there is none.
std::string PrimaryIpv4();

}  // namespace kiso
