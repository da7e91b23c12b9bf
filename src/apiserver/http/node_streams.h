// NodeStreams: pods/log, pods/exec, pods/attach and pods/portforward are
// served by the agent on the pod's node; the API server routes them there:
// in process to the agent embedded in kiso server, else down a tunnel the
// node's standalone agent dialled in (tunnel_dialer.h), relaying the client's
// bytes. Otherwise it answers with a Status that says why: no pod, no node
// assigned yet, or no agent of that node connected.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

// Where agents dial in: GET /kiso/v1/nodes/NODE/tunnel, Upgrade: kiso-tunnel.
inline constexpr std::string_view kTunnelPrefix = "/kiso/v1/nodes/";

class NodeStreams {
 public:
  Response Handle(const Context& ctx, const Target& t, const Request& req);
  void Register(const std::string& node, NodeStreamHandler handler);
  // The /stats/summary of a node whose agent runs in this process; nullopt
  // for any other (a standalone agent's figures are read through nodes/proxy).
  std::optional<boost::json::value> Summary(const boost::json::value& node);
  // An agent's tunnel request (already authenticated).
  Response AcceptTunnel(const Request& req);

 private:
  // The newest idle tunnel of `node` that is still usable, waiting a little
  // for one when every tunnel is busy; null when none comes.
  std::shared_ptr<Tunnel> ClaimFor(const std::string& node);

  std::mutex mu_;
  std::condition_variable tunnel_added_;
  std::map<std::string, NodeStreamHandler> handlers_;
  std::map<std::string, std::vector<std::shared_ptr<Tunnel>>> tunnels_;  // Node → idle ones.
};

// metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics (get, list; label
// selectors), made from the /stats/summary of the nodes whose agents run in
// this process (resource_metrics.cc).
Response HandleMetrics(const Context& ctx, const Target& t, const Request& req,
                       NodeStreams& streams);

}  // namespace kiso::apiserver
