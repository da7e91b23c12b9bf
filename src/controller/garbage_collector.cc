#include "controller/garbage_collector.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

GarbageCollector::GarbageCollector(client::Client* client) : client_(client) {
  for (const auto& type : api::BuiltinResources()) {
    const api::ResourceType* t = &type;
    informers_.push_back(std::make_unique<client::Informer>(
        client_, t, [this, t](const json::value* old, const json::value& obj, bool deleted) {
          OnEvent(t, old, obj, deleted);
        }));
  }
}

GarbageCollector::~GarbageCollector() { Stop(); }

void GarbageCollector::Start() {
  for (auto& i : informers_) i->Start();
  worker_ = std::thread([this] {
    // Decisions need the whole graph: wait until every informer has listed.
    for (auto& i : informers_) {
      while (!stopping_ &&
             !i->WaitForSync(std::chrono::steady_clock::now() + std::chrono::milliseconds(200))) {
      }
    }
    while (auto key = queue_.Get()) {
      Reconcile(*key);
      queue_.Done(*key);
    }
  });
}

void GarbageCollector::Stop() {
  stopping_ = true;
  queue_.ShutDown();
  if (worker_.joinable()) worker_.join();
  for (auto& i : informers_) i->Stop();
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
  for (const auto& k : to_queue) queue_.Add(k);
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
  if (!type) return false;  // An owner kind nobody serves cannot exist.
  auto owner = client_->Get(*type, type->namespaced ? node.ns : "", api::GetString(ref, {"name"}));
  if (!owner.ok()) return owner.status().code() != Code::kNotFound;
  return api::GetString(*owner, {"metadata", "uid"}) == owner_uid;
}

void GarbageCollector::RemoveFinalizer(const Node& node, const std::string& finalizer) {
  json::value patch =
      json::object{{"metadata", json::object{{"$deleteFromPrimitiveList/finalizers",
                                              json::array{json::string(finalizer)}}}}};
  auto res = client_->Patch(*node.type, node.ns, node.name, client::PatchType::kStrategic, patch);
  if (!res.ok() && res.status().code() != Code::kNotFound) {
    spdlog::warn("gc: remove finalizer {} from {}/{}: {}", finalizer, node.ns, node.name,
                 res.status().ToString());
    queue_.AddAfter(node.uid, std::chrono::seconds(1));
  }
}

void GarbageCollector::Reconcile(const std::string& uid) {
  Node node;
  std::vector<Node> dependents;
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(uid);
    if (it == nodes_.end()) return;
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
      auto res = client_->Patch(*d.type, d.ns, d.name, client::PatchType::kStrategic, patch);
      if (!res.ok() && res.status().code() != Code::kNotFound) {
        queue_.AddAfter(uid, std::chrono::seconds(1));
        return;
      }
    }
    RemoveFinalizer(node, "orphan");
    return;
  }
  if (node.deleting && node.finalizers.contains("foregroundDeletion")) {
    if (dependents.empty()) {
      RemoveFinalizer(node, "foregroundDeletion");
      return;
    }
    for (const auto& d : dependents) {
      if (d.deleting) continue;
      client::DeleteOptions options;
      options.propagation_policy = "Foreground";
      Status s = client_->Delete(*d.type, d.ns, d.name, options);
      if (!s.ok() && s.code() != Code::kNotFound) queue_.AddAfter(uid, std::chrono::seconds(1));
    }
    return;  // Requeued as each dependent disappears.
  }
  if (node.owners.empty() || node.deleting) return;
  for (const auto& [owner, ref] : node.owners) {
    if (OwnerExists(node, owner, ref)) return;
  }
  // The informer may be behind (an orphaning may just have removed the reference):
  // decide on the live object, as upstream's attemptToDeleteItem does.
  auto live = client_->Get(*node.type, node.ns, node.name);
  if (!live.ok() || api::GetString(*live, {"metadata", "uid"}) != uid) return;
  const auto* refs = api::Find(*live, {"metadata", "ownerReferences"});
  if (!refs || !refs->is_array() || refs->get_array().empty()) return;
  for (const auto& ref : refs->get_array()) {
    if (OwnerExists(node, std::string(api::GetString(ref, {"uid"})), ref)) return;
  }
  client::DeleteOptions options;
  options.propagation_policy = "Background";
  options.precondition_uid = node.uid;
  Status s = client_->Delete(*node.type, node.ns, node.name, options);
  if (!s.ok() && s.code() != Code::kNotFound && s.code() != Code::kConflict) {
    spdlog::warn("gc: delete orphaned {}/{}: {}", node.ns, node.name, s.ToString());
    queue_.AddAfter(uid, std::chrono::seconds(1));
  }
}

}  // namespace kiso::controller
