// HollowNodes: N simulated nodes that behave like a kubelet without
// containers (kubemark's idea): each registers its Node with capacity and
// allocatable, heartbeats through a Lease in kube-node-lease, reports the pods
// bound to it Running and Ready, and completes their deletion. One pod
// informer serves every hollow node, so thousands fit in one process.
// A pod annotated kiso.dev/hollow-exit-code: "N" runs to completion instead:
// Succeeded for 0, Failed otherwise (what Job tests need).
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/node_loop.h"
#include "client/client.h"
#include "client/informer.h"
#include "client/work_queue.h"

namespace kiso::agent {

struct HollowOptions {
  std::string prefix = "hollow";  // Nodes are named <prefix>-<i>.
  int count = 1;
  int first = 0;  // Index of the first node.
  std::string cpu = "4";
  std::string memory = "16Gi";
  int pods = 110;
  std::string ephemeral_storage = "100Gi";
  std::chrono::seconds heartbeat{10};  // Its Lease lasts four of them (as a kubelet's).
  int workers = 8;                     // Concurrent status updates.
};

class HollowNodes {
 public:
  HollowNodes(client::Client* client, HollowOptions options);
  ~HollowNodes();
  // Registers the nodes (creating or updating them) and starts serving.
  Status Start();
  void Stop();
  // Stops heartbeating for one node (tests: a node that goes silent).
  void Silence(const std::string& node);
  std::vector<std::string> names() const;

 private:
  void OnPod(const boost::json::value& obj, bool deleted);
  void Reconcile(const std::string& key);
  void Heartbeat();  // Renews every node's Lease but the silenced ones'.
  Status Register(const std::string& name);
  Status Renew(const std::string& name);

  client::Client* client_;
  HollowOptions options_;
  std::set<std::string> names_;
  std::unique_ptr<client::Informer> pods_;
  NodeLoop loop_;
  std::mutex mu_;
  std::set<std::string> silenced_;
};

}  // namespace kiso::agent
