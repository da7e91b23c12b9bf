// RBAC's escalation prevention (upstream does it in the rbac registry's
// storage; kiso in admission, where the user and the RBAC index are at
// hand): nobody grants a permission they do not hold.
//   - A Role or ClusterRole may be written only by a user who holds every
//     permission in it (in its namespace; cluster-wide for a ClusterRole) or
//     who may `escalate` roles/clusterroles there.
//   - A RoleBinding or ClusterRoleBinding may be written only by a user who
//     may `bind` the role it refers to (that role by name) or who holds
//     every permission in that role; a role that does not exist is 404.
// system:masters (the admin) and kiso's own requests pass. A refusal is
// upstream's 403: `user "alice" (groups=["devs" "system:authenticated"]) is
// attempting to grant RBAC permissions not currently held:` and each missing
// rule in its compact form on a line of its own.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/authn/user.h"
#include "apiserver/authz/rbac.h"
#include "apiserver/verbs/handlers.h"
#include "apiserver/watch_cache.h"
#include "store/store.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

constexpr std::string_view kRbacGroup = "rbac.authorization.k8s.io";

class RbacEscalation : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "RBACEscalation"; }

  api::ApiStatus Validate(const AdmissionRequest& r, const json::object& obj) const override {
    const Target& t = *r.target;
    if (t.type->group != kRbacGroup || !t.subresource.empty() ||
        (r.operation != "CREATE" && r.operation != "UPDATE"))
      return std::nullopt;
    const UserInfo* user = r.user();
    const Context& ctx = *r.ctx;
    if (!user || user->InGroup(kMastersGroup) || !ctx.rbac || !ctx.authz) return std::nullopt;
    std::string name(api::GetString(obj, {"metadata", "name"}));
    const std::string& plural = t.type->plural;
    std::vector<PolicyRule> granted;
    if (plural == "roles" || plural == "clusterroles") {
      if (May(ctx, *user, "escalate", plural, t.ns, "")) return std::nullopt;
      granted = RulesOf(obj);
    } else if (plural == "rolebindings" || plural == "clusterrolebindings") {
      std::string kind(api::GetString(obj, {"roleRef", "kind"}));
      std::string role(api::GetString(obj, {"roleRef", "name"}));
      std::string role_plural = kind == "Role" ? "roles" : "clusterroles";
      if (May(ctx, *user, "bind", role_plural, t.ns, role)) return std::nullopt;
      bool found = false;
      granted = ctx.rbac->RoleRules(kind, t.ns, role, &found);
      if (!found) {
        const api::ResourceType* role_type = api::FindResource(kRbacGroup, "v1", role_plural);
        return api::NotFound(*role_type, role);
      }
    } else {
      return std::nullopt;
    }
    std::vector<PolicyRule> missing;
    if (Covers(ctx.rbac->RulesFor(*user, t.ns), granted, &missing)) return std::nullopt;
    // A binding written a moment ago may not be in the index yet.
    if (auto rev = ctx.store->CurrentRevision(); rev.ok() && *rev > ctx.cache->revision()) {
      ctx.rbac->CatchUp(*rev, std::chrono::seconds(2));
      missing.clear();
      if (Covers(ctx.rbac->RulesFor(*user, t.ns), granted, &missing)) return std::nullopt;
    }
    std::string groups;
    for (const auto& g : user->groups)
      groups += fmt::format("{}{:?}", groups.empty() ? "" : " ", g);
    std::string why = fmt::format(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:",
        user->name, groups);
    for (const auto& rule : missing) why += "\n" + rule.Compact();
    return AdmissionForbidden(t, name, why);
  }

 private:
  // Whether the authorizers allow `verb` on roles or clusterroles (`name`,
  // when given) in `ns`: the namespace of the Role or RoleBinding written,
  // "" for a cluster-scoped one.
  static bool May(const Context& ctx, const UserInfo& user, std::string verb,
                  const std::string& plural, const std::string& ns, const std::string& name) {
    Attributes a;
    a.user = &user;
    a.verb = std::move(verb);
    a.api_group = std::string(kRbacGroup);
    a.api_version = "v1";
    a.resource = plural;
    a.ns = ns;
    a.name = name;
    return ctx.authz->Authorize(a).decision == Decision::kAllow;
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewRbacEscalation() { return std::make_unique<RbacEscalation>(); }

}  // namespace kiso::apiserver
