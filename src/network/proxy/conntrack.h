// Conntrack cleanup for UDP Services (kube-proxy's): UDP has no connection to
// end, so a client that keeps sending from one port (a resolver, a game, a
// metrics agent) stays translated by its conntrack entry to the endpoint it
// first reached, also after that endpoint left the Service. When endpoints
// leave, their UDP entries are deleted, and the client's next datagram is
// balanced anew. TCP needs nothing: a gone endpoint's connections reset.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/plugin.h"
#include "common/status.h"

namespace kiso::network::proxy {

// One IPv4 conntrack entry, addresses and ports in host order: the flow as
// it left its source (src:sport → dst:dport) and where its replies come from
// (reply_src:reply_sport, the real destination once translated).
struct Flow {
  uint8_t protocol = 0;
  uint32_t src = 0, dst = 0;
  uint16_t sport = 0, dport = 0;
  uint32_t reply_src = 0;
  uint16_t reply_sport = 0;
  bool dnat = false;    // Destination-translated (a Service's).
  bool closed = false;  // A TCP connection that has ended (TIME_WAIT, CLOSE).
};

// Calls `visit` with every IPv4 entry. Needs CAP_NET_ADMIN.
Status ForEachFlow(const std::function<void(const Flow&)>& visit);

// Deletes every IPv4 entry for which `doomed` says so; returns how many went
// (one gone meanwhile counts). Needs CAP_NET_ADMIN.
Result<int> DeleteFlows(const std::function<bool(const Flow&)>& doomed);

// Deletes every IPv4 UDP conntrack entry destination-NATed to ip:port (its
// replies come from there); entries not NATed (a client talking to the pod
// directly) stay. Returns how many were deleted. Needs CAP_NET_ADMIN.
Result<int> DeleteUdpFlowsTo(const std::string& ip, uint16_t port);

}  // namespace kiso::network::proxy

// kiso-netfilter.so's entry points behind ForEachFlow and DeleteFlows
// (libnetfilter_conntrack; see nftables.h).
KISO_PLUGIN_ENTRY void KisoForEachFlow(
    const std::function<void(const kiso::network::proxy::Flow&)>* visit, kiso::Status* out);
KISO_PLUGIN_ENTRY void KisoDeleteFlows(
    const std::function<bool(const kiso::network::proxy::Flow&)>* doomed, kiso::Result<int>* out);
