#include "controller/garbage_collector.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

// Events are not collected, as kube-controller-manager's garbage collector
// ignores them by default (core and events.k8s.io Events): a cluster writes
// them by the thousand, nothing in it owns them, and watching them would keep
// every one decoded in this process.
bool Ignored(const api::ResourceType& type) {
  return type.plural == "events" && (type.group.empty() || type.group == "events.k8s.io");
}

}  // namespace

GarbageCollector::GarbageCollector(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "garbage-collector", 1, shared) {
  for (const auto& type : api::BuiltinResources()) {
    if (!type.Allows("watch")) continue;          // Reviews and tokens: nothing is stored.
    if (!type.storage_version.empty()) continue;  // Watched at the version it is stored at.
    if (Ignored(type)) continue;
    const api::ResourceType* t = &type;
    informers_[t] = Watch(type, [this, t](const json::value* old, const json::value& obj,
                                          bool deleted) { OnEvent(t, old, obj, deleted); });
  }
}

std::optional<json::value> GarbageCollector::Subject(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(uid);
  if (it == nodes_.end()) return std::nullopt;
  return informers_.at(it->second.type)->Get(it->second.ns, it->second.name);
}

void GarbageCollector::OnEvent(const api::ResourceType* type, const json::value* old,
                               const json::value& obj, bool deleted) {
  (void)old;
  std::string uid(api::GetString(obj, {"metadata", "uid"}));
  if (uid.empty()) return;
  std::vector<std::string> to_queue;
  std::lock_guard lock(mu_);
  auto existing = nodes_.find(uid);
  if (existing != nodes_.end()) {
    for (const auto& [owner, ref] : existing->second.owners) dependents_[owner].erase(uid);
  }
  if (deleted) {
    if (existing != nodes_.end()) {
      // Owners waiting in foreground for this dependent, and dependents now orphaned.
      for (const auto& [owner, ref] : existing->second.owners) to_queue.push_back(owner);
      nodes_.erase(existing);
    }
    for (const auto& d : dependents_[uid]) to_queue.push_back(d);
  } else {
    Node node;
    node.type = type;
    node.ns = api::GetString(obj, {"metadata", "namespace"});
    node.name = api::GetString(obj, {"metadata", "name"});
    node.uid = uid;
    node.deleting = !api::GetString(obj, {"metadata", "deletionTimestamp"}).empty();
    if (const auto* refs = api::Find(obj, {"metadata", "ownerReferences"});
        refs && refs->is_array()) {
      for (const auto& ref : refs->get_array()) {
        std::string owner(api::GetString(ref, {"uid"}));
        if (owner.empty()) continue;
        node.owners.emplace_back(owner, ref);
        dependents_[owner].insert(uid);
      }
    }
    if (const auto* f = api::Find(obj, {"metadata", "finalizers"}); f && f->is_array()) {
      for (const auto& v : f->get_array()) {
        if (v.is_string()) node.finalizers.insert(std::string(v.get_string()));
      }
    }
    if (!node.owners.empty() || node.finalizers.contains("orphan") ||
        node.finalizers.contains("foregroundDeletion")) {
      to_queue.push_back(uid);
    }
    nodes_[uid] = std::move(node);
  }
  for (const auto& k : to_queue) Enqueue(k);
}

bool GarbageCollector::OwnerExists(const Node& node, const std::string& owner_uid,
                                   const json::value& ref) {
  {
    std::lock_guard lock(mu_);
    if (nodes_.contains(owner_uid)) return true;
  }
  // The informer may lag: ask the API before deleting anything (as upstream does).
  const api::ResourceType* type =
      api::FindKind(api::GetString(ref, {"apiVersion"}), api::GetString(ref, {"kind"}));
  // A kind not served (a CustomResourceDefinition not yet established, or one
  // being served a moment later) cannot be checked: the dependent stays, as
  // upstream's collector keeps what it cannot resolve.
  if (!type) return true;
  auto owner = client()->Get(*type, type->namespaced ? node.ns : "", api::GetString(ref, {"name"}));
  if (!owner.ok()) return owner.status().code() != Code::kNotFound;
  return api::GetString(*owner, {"metadata", "uid"}) == owner_uid;
}

Status GarbageCollector::RemoveFinalizer(const Node& node, const std::string& finalizer) {
  json::value patch =
      json::object{{"metadata", json::object{{"$deleteFromPrimitiveList/finalizers",
                                              json::array{json::string(finalizer)}}}}};
  auto res = client()->Patch(*node.type, node.ns, node.name, client::PatchType::kStrategic, patch);
  if (!res.ok() && res.status().code() != Code::kNotFound) {
    return res.status().Annotate(
        fmt::format("remove finalizer {} from {}/{}", finalizer, node.ns, node.name));
  }
  return Status::Ok();
}

// Errors are retried with back-off by the Controller base.
Status GarbageCollector::Reconcile(const std::string& uid) {
  Node node;
  std::vector<Node> dependents;
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(uid);
    if (it == nodes_.end()) return Status::Ok();
    node = it->second;
    for (const auto& d : dependents_[uid]) {
      auto dit = nodes_.find(d);
      if (dit != nodes_.end()) dependents.push_back(dit->second);
    }
  }
  if (node.deleting && node.finalizers.contains("orphan")) {
    for (const auto& d : dependents) {
      json::value patch = json::object{
          {"metadata",
           json::object{{"ownerReferences",
                         json::array{json::object{{"$patch", "delete"}, {"uid", uid}}}}}}};
      auto res = client()->Patch(*d.type, d.ns, d.name, client::PatchType::kStrategic, patch);
      if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
    }
    return RemoveFinalizer(node, "orphan");
  }
  if (node.deleting && node.finalizers.contains("foregroundDeletion")) {
    if (dependents.empty()) return RemoveFinalizer(node, "foregroundDeletion");
    for (const auto& d : dependents) {
      if (d.deleting) continue;
      client::DeleteOptions options;
      options.propagation_policy = "Foreground";
      Status s = client()->Delete(*d.type, d.ns, d.name, options);
      if (!s.ok() && s.code() != Code::kNotFound) return s;
    }
    return Status::Ok();  // Requeued as each dependent disappears.
  }
  if (node.owners.empty() || node.deleting) return Status::Ok();
  for (const auto& [owner, ref] : node.owners) {
    if (OwnerExists(node, owner, ref)) return Status::Ok();
  }
  // The informer may be behind (an orphaning may just have removed the reference):
  // decide on the live object, as upstream's attemptToDeleteItem does.
  auto live = client()->Get(*node.type, node.ns, node.name);
  if (!live.ok() || api::GetString(*live, {"metadata", "uid"}) != uid) return Status::Ok();
  const auto* refs = api::Find(*live, {"metadata", "ownerReferences"});
  if (!refs || !refs->is_array() || refs->get_array().empty()) return Status::Ok();
  for (const auto& ref : refs->get_array()) {
    if (OwnerExists(node, std::string(api::GetString(ref, {"uid"})), ref)) return Status::Ok();
  }
  client::DeleteOptions options;
  options.propagation_policy = "Background";
  options.precondition_uid = node.uid;
  Status s = client()->Delete(*node.type, node.ns, node.name, options);
  if (!s.ok() && s.code() != Code::kNotFound && s.code() != Code::kConflict) {
    return s.Annotate(fmt::format("delete orphaned {}/{}", node.ns, node.name));
  }
  return Status::Ok();
}

}  // namespace kiso::controller
