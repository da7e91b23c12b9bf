// Authorization: may this user do this? Kubernetes' request attributes and
// decisions, the RBAC authorizer (rbac.cc) and the Node authorizer
// (node_authorizer.cc) behind one interface, asked in that order after the
// privileged group system:masters.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "apiserver/authn/user.h"

namespace kiso::apiserver {

// What a request asks to do (kube-apiserver's authorizer.Attributes).
struct Attributes {
  const UserInfo* user = nullptr;
  std::string verb;  // get list watch create update patch delete deletecollection, or an HTTP verb
                     // in lower case for a non-resource path; also bind, escalate, impersonate…
  bool resource_request = true;
  std::string api_group;
  std::string api_version;
  std::string resource;
  std::string subresource;
  std::string ns;
  std::string name;
  std::string path;  // A non-resource request's path.
};

// A request for a path that names no resource (/healthz, /apis/<g>/<v>…):
// the HTTP method in lower case is its verb.
Attributes NonResourceAttributes(const UserInfo* user, std::string path, std::string_view method);

enum class Decision { kAllow, kDeny, kNoOpinion };

struct AuthorizationResult {
  Decision decision = Decision::kNoOpinion;
  std::string reason;
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual AuthorizationResult Authorize(const Attributes& a) const = 0;
};

// One RBAC rule (rbac.authorization.k8s.io/v1 PolicyRule).
struct PolicyRule {
  std::vector<std::string> verbs;
  std::vector<std::string> api_groups;
  std::vector<std::string> resources;
  std::vector<std::string> resource_names;
  std::vector<std::string> non_resource_urls;

  static PolicyRule FromJson(const boost::json::object& rule);
  boost::json::object ToJson() const;
  // Whether this rule allows `a` (RBAC's RuleAllows).
  bool Allows(const Attributes& a) const;
  // kube-apiserver's compact form, as its escalation errors print rules:
  // {APIGroups:[""], Resources:["pods"], Verbs:["get"]}.
  std::string Compact() const;
};

std::vector<PolicyRule> RulesOf(const boost::json::object& role);

// Whether the rules `owner` cover every permission in `servant` (RBAC's
// escalation check); the rules of `servant` that are not covered go to `missing`.
bool Covers(const std::vector<PolicyRule>& owner, const std::vector<PolicyRule>& servant,
            std::vector<PolicyRule>* missing);

// The chain kube-apiserver runs: system:masters may do anything; then each
// authorizer in turn, the first to allow or deny deciding; no opinion from
// all of them is a denial (with their reasons).
class AuthorizerChain : public Authorizer {
 public:
  explicit AuthorizerChain(std::vector<const Authorizer*> chain) : chain_(std::move(chain)) {}
  AuthorizationResult Authorize(const Attributes& a) const override;

 private:
  std::vector<const Authorizer*> chain_;
};

// The 403 message kube-apiserver writes for a denied request:
//   pods "web" is forbidden: User "alice" cannot get resource "pods" in API group "" in the
//   namespace "dev"
std::string ForbiddenMessage(const Attributes& a, const std::string& reason = "");

}  // namespace kiso::apiserver
