// LocalPathProvisioner: every node's half of the `local-path` StorageClass
// (K3s's local-path provisioner's role, `rancher.io/local-path`). A claim of
// a class with that provisioner, once the scheduler has chosen this node for
// its first pod (volume.kubernetes.io/selected-node), gets a directory under
// the node's storage directory, <dir>/pvc-<uid>_<namespace>_<name>, and a
// PersistentVolume kept for it: a hostPath volume with node affinity to this
// node, the claim's size and access modes, and the class's reclaim policy;
// the PV controller then binds the two. A volume it made that is Released
// with reclaim policy Delete loses its directory and is deleted. Work is
// level-triggered: any change to claims, volumes or classes runs a pass over
// all of them.
#pragma once

#include <boost/json/value.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "client/client.h"
#include "client/informer.h"

namespace kiso::agent {

class LocalPathProvisioner {
 public:
  static constexpr std::string_view kName = "rancher.io/local-path";

  LocalPathProvisioner(client::Client* client, std::string node_name, std::string dir);
  ~LocalPathProvisioner();
  LocalPathProvisioner(const LocalPathProvisioner&) = delete;
  LocalPathProvisioner& operator=(const LocalPathProvisioner&) = delete;

  void Start();
  void Stop();

  // The `local-path` StorageClass (the default one, binding WaitForFirstConsumer,
  // reclaim Delete, expandable), created unless it exists.
  static Status EnsureStorageClass(client::Client* client);

 private:
  void Dirty();
  void Run();
  // One pass; false when something failed (retried after a second).
  bool Pass();
  Status Provision(const boost::json::value& claim, const boost::json::value& cls);
  Status Reclaim(const boost::json::value& volume);

  client::Client* client_;
  std::string node_name_;
  std::string dir_;
  std::unique_ptr<client::Informer> claims_;
  std::unique_ptr<client::Informer> volumes_;
  std::unique_ptr<client::Informer> classes_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false;  // guarded by mu_
  bool stop_ = false;   // guarded by mu_
  std::thread thread_;
};

}  // namespace kiso::agent
