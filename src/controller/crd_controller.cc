#include "controller/crd_controller.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <set>

#include "api/custom_resource.h"
#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Crds() {
  return *api::FindResource("apiextensions.k8s.io", "v1", "customresourcedefinitions");
}

// Every name a definition claims in its group: plural, singular, kind, listKind, short names.
std::set<std::string> Claimed(const json::value& names) {
  std::set<std::string> out;
  for (std::string_view f : {"plural", "singular", "kind", "listKind"}) {
    std::string_view n = api::GetString(names, {f});
    if (!n.empty()) out.emplace(n);
  }
  for (const auto& s : api::GetArray(names, {"shortNames"})) {
    if (s.is_string()) out.emplace(s.get_string());
  }
  return out;
}

// Sets a condition; its lastTransitionTime moves only when its status does.
void SetCondition(json::object& status, std::string_view type, std::string_view value,
                  std::string_view reason, std::string_view message) {
  auto& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  json::object next{{"type", type},
                    {"status", value},
                    {"lastTransitionTime", api::NowRfc3339()},
                    {"reason", reason},
                    {"message", message}};
  for (auto& c : conditions.get_array()) {
    if (api::GetString(c, {"type"}) != type) continue;
    if (api::GetString(c, {"status"}) == value)
      next["lastTransitionTime"] = c.at("lastTransitionTime");
    c = std::move(next);
    return;
  }
  conditions.get_array().push_back(std::move(next));
}

bool HasFinalizer(const json::value& obj) {
  for (const auto& f : api::GetArray(obj, {"metadata", "finalizers"})) {
    if (f.is_string() && f.get_string() == api::kCrdCleanupFinalizer) return true;
  }
  return false;
}

}  // namespace

CrdController::CrdController(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "crd-controller", 1, shared) {
  // A definition's change may free or take another's names: requeue them all (few).
  crds_ = Watch(Crds(), [this](const json::value*, const json::value& changed, bool deleted) {
    if (!deleted) Enqueue(KeyOf(changed));
    for (const auto& crd : crds_->List()) Enqueue(KeyOf(crd));
  });
}

Status CrdController::Reconcile(const std::string& key) {
  const auto [ns, name] = SplitKey(key);
  auto crd = crds_->Get("", name);
  if (!crd) return Status::Ok();
  if (!api::GetString(*crd, {"metadata", "deletionTimestamp"}).empty()) return Finalize(*crd);
  if (!HasFinalizer(*crd)) {
    json::value next = *crd;
    auto& meta = next.as_object()["metadata"].as_object();
    auto& finalizers = meta["finalizers"];
    if (!finalizers.is_array()) finalizers = json::array();
    finalizers.as_array().emplace_back(api::kCrdCleanupFinalizer);
    auto res = client()->Update(Crds(), "", next);
    if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
    return Status::Ok();  // The update comes back through the informer.
  }
  // Names: taken when another definition of the group, created earlier, accepted them.
  std::string_view group = api::GetString(*crd, {"spec", "group"});
  const json::value* names = api::Find(*crd, {"spec", "names"});
  if (!names) return Status::Ok();
  std::string conflict;
  for (const auto& other : crds_->List()) {
    if (api::GetString(other, {"metadata", "name"}) == name) continue;
    if (api::GetString(other, {"spec", "group"}) != group) continue;
    const json::value* accepted = api::Find(other, {"status", "acceptedNames"});
    if (!accepted) continue;
    auto theirs = Claimed(*accepted);
    for (const auto& n : Claimed(*names)) {
      if (theirs.contains(n)) {
        conflict = n;
        break;
      }
    }
    if (!conflict.empty()) break;
  }
  json::value next = *crd;
  auto& status = api::Child(next.as_object(), "status");
  if (conflict.empty()) {
    status["acceptedNames"] = *names;
    SetCondition(status, "NamesAccepted", "True", "NoConflicts", "no conflicts found");
    if (!api::CrdCondition(*crd, "Established")) {
      SetCondition(status, "Established", "True", "InitialNamesAccepted",
                   "the initial names have been accepted");
    }
  } else {
    SetCondition(status, "NamesAccepted", "False", "NameConflict",
                 fmt::format("\"{}\" is already in use", conflict));
    if (!status.contains("acceptedNames")) status["acceptedNames"] = json::object();
  }
  auto& stored = status["storedVersions"];
  if (!stored.is_array()) stored = json::array();
  for (const auto& v : api::GetArray(*crd, {"spec", "versions"})) {
    const auto* st = api::Find(v, {"storage"});
    if (!st || !st->is_bool() || !st->get_bool()) continue;
    json::value version(api::GetString(v, {"name"}));
    if (std::find(stored.as_array().begin(), stored.as_array().end(), version) ==
        stored.as_array().end())
      stored.as_array().push_back(version);
  }
  if (next == *crd) return Status::Ok();
  auto res = client()->Update(Crds(), "", next, "status");
  if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
  return Status::Ok();
}

Status CrdController::Finalize(const json::value& crd) {
  if (!HasFinalizer(crd)) return Status::Ok();
  std::string name(api::GetString(crd, {"metadata", "name"}));
  if (!api::CrdCondition(crd, "Terminating")) {
    json::value next = crd;
    SetCondition(api::Child(next.as_object(), "status"), "Terminating", "True",
                 "InstanceDeletionInProgress", "CustomResource deletion is in progress");
    auto res = client()->Update(Crds(), "", next, "status");
    if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
    return Status::Ok();  // Back through the informer, with the condition.
  }
  // Its objects, through any version the API server serves (all share one store prefix).
  const api::ResourceType* type = nullptr;
  for (const auto& v : api::GetArray(crd, {"spec", "versions"})) {
    type = api::FindResource(api::GetString(crd, {"spec", "group"}), api::GetString(v, {"name"}),
                             api::GetString(crd, {"spec", "names", "plural"}));
    if (type) break;
  }
  if (type) {
    auto all = client()->List(*type, "");
    if (!all.ok()) return all.status().Annotate("list " + type->plural);
    const auto& items = api::GetArray(*all, {"items"});
    if (!items.empty()) {
      // A collection is deleted namespace by namespace (as the API serves it).
      std::set<std::string> namespaces;
      for (const auto& item : items)
        namespaces.emplace(api::GetString(item, {"metadata", "namespace"}));
      for (const auto& ns : namespaces) {
        Status s = client()->DeleteCollection(*type, ns);
        if (!s.ok() && s.code() != Code::kNotFound) return s.Annotate("delete " + type->plural);
      }
      // Back when they are gone (finalizers of their own may hold them a while).
      return MakeStatus(Code::kUnavailable, "the objects of {} are still being deleted", name);
    }
  } else if (api::CrdCondition(crd, "Established")) {
    // Established but not served yet: the API server publishes it in a moment.
    return MakeStatus(Code::kUnavailable, "{} is not served yet", name);
  }
  json::value next = crd;
  auto& finalizers = next.as_object()["metadata"].as_object()["finalizers"].as_array();
  finalizers.erase(
      std::remove(finalizers.begin(), finalizers.end(), json::value(api::kCrdCleanupFinalizer)),
      finalizers.end());
  auto res = client()->Update(Crds(), "", next);
  if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
  return Status::Ok();
}

}  // namespace kiso::controller
