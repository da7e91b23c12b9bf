#include "controller/clusterrole_aggregation_controller.h"

#include <boost/json.hpp>

#include "api/object.h"
#include "api/selector.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& ClusterRoles() {
  return *api::FindResource("rbac.authorization.k8s.io", "v1", "clusterroles");
}

bool Aggregated(const json::value& role) {
  return api::Find(role, {"aggregationRule", "clusterRoleSelectors"}) != nullptr;
}

}  // namespace

ClusterRoleAggregationController::ClusterRoleAggregationController(client::Client* client,
                                                                   client::SharedInformers* shared)
    : Controller(client, "clusterrole-aggregation-controller", 1, shared) {
  // Any role's change may change what an aggregated role holds: requeue them all (few).
  roles_ = Watch(ClusterRoles(), [this](const json::value*, const json::value& changed, bool) {
    if (Aggregated(changed)) Enqueue(KeyOf(changed));
    for (const auto& role : roles_->List()) {
      if (Aggregated(role)) Enqueue(KeyOf(role));
    }
  });
}

Status ClusterRoleAggregationController::Reconcile(const std::string& key) {
  const auto [ns, name] = SplitKey(key);
  auto role = roles_->Get("", name);
  if (!role || !Aggregated(*role)) return Status::Ok();
  std::vector<api::LabelSelector> selectors;
  for (const auto& s : api::GetArray(*role, {"aggregationRule", "clusterRoleSelectors"})) {
    auto sel = api::LabelSelector::FromObject(s);
    if (!sel.ok()) return sel.status();
    if (!sel->empty()) selectors.push_back(std::move(*sel));  // Empty selects nothing here.
  }
  // The selected roles by name (the informer's order is a map's), their rules
  // concatenated without duplicates, as upstream does.
  std::map<std::string, json::value> selected;
  for (const auto& other : roles_->List()) {
    std::string other_name(api::GetString(other, {"metadata", "name"}));
    if (other_name == name) continue;
    auto labels = api::GetLabels(other);
    for (const auto& sel : selectors) {
      if (sel.Matches(labels)) {
        selected.emplace(other_name, other);
        break;
      }
    }
  }
  json::array rules;
  for (const auto& [n, other] : selected) {
    for (const auto& rule : api::GetArray(other, {"rules"})) {
      if (std::find(rules.begin(), rules.end(), rule) == rules.end()) rules.push_back(rule);
    }
  }
  const auto* current = api::Find(*role, {"rules"});
  if (current && current->is_array() && current->get_array() == rules) return Status::Ok();
  if (!current && rules.empty()) return Status::Ok();
  json::value next = *role;
  next.as_object()["rules"] = std::move(rules);
  auto res = client()->Update(ClusterRoles(), "", next);
  if (res.ok() || res.status().code() == Code::kNotFound) return Status::Ok();
  return res.status();  // A conflict: the newer role comes through the informer.
}

}  // namespace kiso::controller
