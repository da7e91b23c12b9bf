#include "apiserver/authz/rbac.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/watch_cache.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

constexpr std::string_view kPrefix = "/registry/rbac.authorization.k8s.io/";

}  // namespace

Rbac::Rbac(WatchCache* cache) : cache_(cache) {
  indexer_ = cache_->AddIndexer(std::string(kPrefix),
                                [this](const std::string& key, const ObjectPtr& obj) {
                                  Apply(key, obj ? &obj->json : nullptr);
                                });
}

Rbac::~Rbac() { cache_->RemoveIndexer(indexer_); }

void Rbac::Apply(const std::string& key, const std::string* text) {
  // /registry/rbac.authorization.k8s.io/<plural>/[<ns>/]<name>
  std::string_view rest = std::string_view(key).substr(kPrefix.size());
  std::string plural(rest.substr(0, rest.find('/')));
  std::string id(rest.substr(plural.size() + 1));  // "ns/name" or "name"
  std::unique_lock lock(mu_);
  if (plural == "roles") roles_.erase(id);
  if (plural == "clusterroles") cluster_roles_.erase(id);
  if (plural == "rolebindings" || plural == "clusterrolebindings") bindings_.erase(key);
  if (text == nullptr) return;
  auto v = api::ParseJson(*text);
  if (!v.ok() || !v->is_object()) return;
  const json::object& obj = v->as_object();
  if (plural == "roles") {
    roles_[id] = RulesOf(obj);
  } else if (plural == "clusterroles") {
    cluster_roles_[id] = RulesOf(obj);
  } else if (plural == "rolebindings" || plural == "clusterrolebindings") {
    Binding b;
    b.ns = std::string(api::GetString(obj, {"metadata", "namespace"}));
    b.name = std::string(api::GetString(obj, {"metadata", "name"}));
    b.role_kind = std::string(api::GetString(obj, {"roleRef", "kind"}));
    b.role_name = std::string(api::GetString(obj, {"roleRef", "name"}));
    if (const auto* subjects = obj.if_contains("subjects"); subjects && subjects->is_array()) {
      for (const auto& s : subjects->get_array()) {
        std::string kind(api::GetString(s, {"kind"}));
        std::string name(api::GetString(s, {"name"}));
        if (kind == "User") {
          b.users.push_back(name);
        } else if (kind == "Group") {
          b.groups.push_back(name);
        } else if (kind == "ServiceAccount") {
          std::string ns(api::GetString(s, {"namespace"}));
          if (ns.empty()) ns = b.ns;
          b.users.push_back(fmt::format("{}{}:{}", kServiceAccountPrefix, ns, name));
        }
      }
    }
    bindings_[key] = std::move(b);
  }
}

bool Rbac::Applies(const Binding& b, const UserInfo& user) const {
  for (const auto& u : b.users) {
    if (u == user.name) return true;
  }
  for (const auto& g : b.groups) {
    if (user.InGroup(g)) return true;
  }
  return false;
}

std::vector<PolicyRule> Rbac::RoleRules(const std::string& kind, const std::string& ns,
                                        const std::string& name, bool* found) const {
  std::shared_lock lock(mu_);
  const auto& map = kind == "Role" ? roles_ : cluster_roles_;
  auto it = map.find(kind == "Role" ? ns + "/" + name : name);
  if (found) *found = it != map.end();
  return it == map.end() ? std::vector<PolicyRule>{} : it->second;
}

template <typename F>
void Rbac::Visit(const UserInfo& user, const std::string& ns, std::vector<std::string>* errors,
                 F&& visit) const {
  // ClusterRoleBindings first, then the RoleBindings of the namespace (keys
  // sort /clusterrolebindings/ before /rolebindings/).
  for (const auto& [key, b] : bindings_) {
    if (!b.ns.empty() && b.ns != ns) continue;
    if (!Applies(b, user)) continue;
    const std::vector<PolicyRule>* rules = nullptr;
    if (b.role_kind == "ClusterRole") {
      auto it = cluster_roles_.find(b.role_name);
      if (it != cluster_roles_.end()) rules = &it->second;
    } else if (b.role_kind == "Role" && !b.ns.empty()) {
      auto it = roles_.find(b.ns + "/" + b.role_name);
      if (it != roles_.end()) rules = &it->second;
    }
    if (rules == nullptr) {
      if (errors) {
        errors->push_back(fmt::format("{}.rbac.authorization.k8s.io {:?} not found",
                                      b.role_kind == "Role" ? "role" : "clusterrole", b.role_name));
      }
      continue;
    }
    if (visit(b, *rules)) return;
  }
}

AuthorizationResult Rbac::Authorize(const Attributes& a) const {
  if (a.user == nullptr) return {Decision::kNoOpinion, ""};
  std::shared_lock lock(mu_);
  std::vector<std::string> errors;
  AuthorizationResult result{Decision::kNoOpinion, ""};
  Visit(*a.user, a.ns, &errors, [&](const Binding& b, const std::vector<PolicyRule>& rules) {
    for (const auto& r : rules) {
      if (!r.Allows(a)) continue;
      result.decision = Decision::kAllow;
      result.reason = fmt::format("RBAC: allowed by {} {:?} of {} {:?} to {}",
                                  b.ns.empty() ? "ClusterRoleBinding" : "RoleBinding", b.name,
                                  b.role_kind, b.role_name, a.user->name);
      return true;
    }
    return false;
  });
  if (result.decision != Decision::kAllow && !errors.empty()) {
    std::string joined;
    for (const auto& e : errors) joined += (joined.empty() ? "" : ", ") + e;
    result.reason = errors.size() == 1 ? "RBAC: " + joined : "RBAC: [" + joined + "]";
  }
  return result;
}

std::vector<PolicyRule> Rbac::RulesFor(const UserInfo& user, const std::string& ns,
                                       std::vector<std::string>* errors) const {
  std::shared_lock lock(mu_);
  std::vector<PolicyRule> out;
  Visit(user, ns, errors, [&](const Binding&, const std::vector<PolicyRule>& rules) {
    out.insert(out.end(), rules.begin(), rules.end());
    return false;
  });
  return out;
}

void Rbac::CatchUp(store::Revision revision, std::chrono::milliseconds timeout) const {
  cache_->WaitFor(revision, std::chrono::steady_clock::now() + timeout);
}

}  // namespace kiso::apiserver
