// The Node authorizer: what a node's agent (user system:node:<name> in
// system:nodes) may do — its own Node and Lease, the pods bound to it and
// their statuses, and the Secrets, ConfigMaps, PersistentVolumeClaims and
// ServiceAccounts those pods use; events; its certificate requests; watches
// of what every agent watches (pods, services, endpoints, nodes). Anything
// else it has no opinion on (RBAC decides). NodeRestriction (admission)
// narrows the writes further.
#pragma once

#include <boost/json/object.hpp>
#include <set>
#include <string>

#include "apiserver/authz/authorizer.h"

namespace kiso::apiserver {

class WatchCache;

// The node a user is, or "" for any other user.
std::string NodeOf(const UserInfo& user);

// What a pod refers to, by kind: "secrets", "configmaps",
// "persistentvolumeclaims", "serviceaccounts" → names.
std::set<std::pair<std::string, std::string>> PodReferences(const boost::json::object& pod);

class NodeAuthorizer : public Authorizer {
 public:
  explicit NodeAuthorizer(WatchCache* cache) : cache_(cache) {}
  AuthorizationResult Authorize(const Attributes& a) const override;

  // Whether a pod `ns/name` is bound to `node`.
  bool PodOnNode(const std::string& node, const std::string& ns, const std::string& name) const;

 private:
  // Whether a pod on `node` in `ns` refers to `resource`/`name`.
  bool Referenced(const std::string& node, const std::string& ns, const std::string& resource,
                  const std::string& name) const;

  WatchCache* cache_;
};

}  // namespace kiso::apiserver
