// The RBAC authorizer (rbac.authorization.k8s.io/v1): Roles and ClusterRoles
// name rules; RoleBindings and ClusterRoleBindings grant them to users,
// groups and service accounts. An index of the four kinds is kept by the
// watch cache as it applies changes (never behind it); a decision reads the
// index under a shared lock.
#pragma once

#include <chrono>
#include <map>
#include <shared_mutex>
#include <string>
#include <vector>

#include "apiserver/authz/authorizer.h"
#include "store/store.h"

namespace kiso::apiserver {

class WatchCache;

class Rbac : public Authorizer {
 public:
  // Follows the RBAC objects in `cache` until destroyed.
  explicit Rbac(WatchCache* cache);
  ~Rbac() override;
  Rbac(const Rbac&) = delete;
  Rbac& operator=(const Rbac&) = delete;

  AuthorizationResult Authorize(const Attributes& a) const override;

  // Every rule that applies to `user` in namespace `ns` (cluster-wide ones
  // too); SelfSubjectRulesReview lists them. `errors` gets bindings whose role is missing.
  std::vector<PolicyRule> RulesFor(const UserInfo& user, const std::string& ns,
                                   std::vector<std::string>* errors = nullptr) const;

  // The rules of the role a binding refers to (kind Role in `ns`, or ClusterRole).
  std::vector<PolicyRule> RoleRules(const std::string& kind, const std::string& ns,
                                    const std::string& name, bool* found = nullptr) const;

  // Waits until the index has applied `revision` (the store's, when a
  // request was denied: read-your-writes for a binding just made), at most `timeout`.
  void CatchUp(store::Revision revision, std::chrono::milliseconds timeout) const;

 private:
  struct Binding {
    std::string ns;  // "" for a ClusterRoleBinding.
    std::string name;
    std::string role_kind;
    std::string role_name;
    std::vector<std::string> users;  // Subject names as users see them (service accounts
                                     // as system:serviceaccount:ns:name).
    std::vector<std::string> groups;
  };
  void Apply(const std::string& key, const std::string* json);
  bool Applies(const Binding& b, const UserInfo& user) const;
  // Calls `visit` with each binding that applies to `user` in `ns`, and its
  // role's rules, until it returns true. Under mu_ (shared).
  template <typename F>
  void Visit(const UserInfo& user, const std::string& ns, std::vector<std::string>* errors,
             F&& visit) const;

  WatchCache* cache_;
  int indexer_ = 0;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::vector<PolicyRule>> roles_;          // "ns/name"
  std::map<std::string, std::vector<PolicyRule>> cluster_roles_;  // name
  std::map<std::string, Binding> bindings_;                       // store key
};

}  // namespace kiso::apiserver
