#include "controller/persistent_volume_controller.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/storage.h"
#include "scheduler/volume_binding.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Claims() { return *api::FindResource("", "v1", "persistentvolumeclaims"); }
const api::ResourceType& Volumes() { return *api::FindResource("", "v1", "persistentvolumes"); }
const api::ResourceType& Classes() {
  return *api::FindResource("storage.k8s.io", "v1", "storageclasses");
}
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }

constexpr std::string_view kBindCompleted = "pv.kubernetes.io/bind-completed";
constexpr std::string_view kBoundByController = "pv.kubernetes.io/bound-by-controller";

bool HasFinalizer(const json::value& obj, std::string_view finalizer) {
  for (const auto& f : api::GetArray(obj, {"metadata", "finalizers"}))
    if (f.is_string() && f.get_string() == finalizer) return true;
  return false;
}

bool Deleting(const json::value& obj) {
  return !api::GetString(obj, {"metadata", "deletionTimestamp"}).empty();
}

// The claims a pod's volumes name.
std::vector<std::string> ClaimsOf(const json::value& pod) {
  std::vector<std::string> out;
  for (const auto& v : api::GetArray(pod, {"spec", "volumes"})) {
    if (auto c = api::GetString(v, {"persistentVolumeClaim", "claimName"}); !c.empty())
      out.emplace_back(c);
  }
  return out;
}

std::string ClaimKey(const json::value& ref) {
  return fmt::format("{}/{}", api::GetString(ref, {"namespace"}), api::GetString(ref, {"name"}));
}

}  // namespace

PersistentVolumeController::PersistentVolumeController(client::Client* client,
                                                       client::SharedInformers* shared)
    : Controller(client, "persistentvolume-controller", 2, shared) {
  claims_ = Watch(Claims(), [this](const json::value*, const json::value& claim, bool deleted) {
    Enqueue(KeyOf(claim));
    if (!deleted) return;
    // Its volume is Released now.
    if (auto v = api::GetString(claim, {"spec", "volumeName"}); !v.empty()) {
      Enqueue("/" + std::string(v));
    }
    for (const auto& pv : volumes_->List()) {
      const auto* ref = api::Find(pv, {"spec", "claimRef"});
      if (ref && api::GetString(*ref, {"uid"}) == api::GetString(claim, {"metadata", "uid"}))
        Enqueue(KeyOf(pv));
    }
  });
  volumes_ = Watch(Volumes(), [this](const json::value*, const json::value& pv, bool) {
    Enqueue(KeyOf(pv));
    if (const auto* ref = api::Find(pv, {"spec", "claimRef"}); ref && ref->is_object())
      Enqueue(ClaimKey(*ref));
  });
  classes_ = Watch(Classes(), [this](const json::value*, const json::value& cls, bool deleted) {
    if (deleted) return;
    for (const auto& claim : claims_->List()) {
      if (api::GetString(claim, {"status", "phase"}) == "Pending" &&
          api::ClaimClass(claim) == api::GetString(cls, {"metadata", "name"}))
        Enqueue(KeyOf(claim));
    }
  });
  pods_ = Watch(Pods(), [this](const json::value*, const json::value& pod, bool) {
    std::string ns(api::GetString(pod, {"metadata", "namespace"}));
    for (const auto& c : ClaimsOf(pod)) Enqueue(fmt::format("{}/{}", ns, c));
  });
  nodes_ = Watch(Nodes(), [](const json::value*, const json::value&, bool) {});
}

std::optional<json::value> PersistentVolumeController::Subject(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  return ns.empty() ? volumes_->Get("", name) : claims_->Get(ns, name);
}

Status PersistentVolumeController::Reconcile(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  if (ns.empty()) {
    auto pv = volumes_->Get("", name);
    return pv ? SyncVolume(*pv) : Status::Ok();
  }
  auto claim = claims_->Get(ns, name);
  return claim ? SyncClaim(*claim) : Status::Ok();
}

void PersistentVolumeController::EventOnce(const json::value& obj, const std::string& type,
                                           const std::string& reason, const std::string& message) {
  {
    std::lock_guard lock(events_mu_);
    std::string& last = last_event_[std::string(api::GetString(obj, {"metadata", "uid"}))];
    if (last == reason + "/" + message) return;
    last = reason + "/" + message;
  }
  RecordEvent(obj, type, reason, message);
}

bool PersistentVolumeController::ClaimInUse(const json::value& claim) {
  std::string_view ns = api::GetString(claim, {"metadata", "namespace"});
  std::string_view name = api::GetString(claim, {"metadata", "name"});
  for (const auto& shared : pods_->Items()) {
    const json::value& pod = *shared;
    if (api::GetString(pod, {"metadata", "namespace"}) != ns) continue;
    std::string_view phase = api::GetString(pod, {"status", "phase"});
    if (phase == "Succeeded" || phase == "Failed") continue;
    for (const auto& c : ClaimsOf(pod))
      if (c == name) return true;
  }
  return false;
}

Status PersistentVolumeController::RemoveFinalizer(const api::ResourceType& type,
                                                   const json::value& obj,
                                                   std::string_view finalizer) {
  return UpdateFresh(type, obj, [finalizer](json::value& o) {
    auto* list = o.as_object()["metadata"].as_object().if_contains("finalizers");
    if (!list || !list->is_array()) return;
    auto& a = list->get_array();
    for (auto it = a.begin(); it != a.end();) {
      it = (it->is_string() && it->get_string() == finalizer) ? a.erase(it) : it + 1;
    }
  });
}

Status PersistentVolumeController::SetVolumePhase(const json::value& volume, std::string_view phase,
                                                  std::string_view message) {
  if (api::GetString(volume, {"status", "phase"}) == phase &&
      api::GetString(volume, {"status", "message"}) == message)
    return Status::Ok();
  json::value next = volume;
  auto& status = api::Child(next.as_object(), "status");
  status["phase"] = phase;
  status["lastPhaseTransitionTime"] = api::NowRfc3339();
  if (message.empty()) {
    status.erase("message");
  } else {
    status["message"] = message;
  }
  auto res = client()->Update(Volumes(), "", next, "status");
  return res.ok() || res.status().code() == Code::kNotFound ? Status::Ok() : res.status();
}

Status PersistentVolumeController::SyncClaim(const json::value& claim) {
  if (Deleting(claim)) {
    if (HasFinalizer(claim, api::kPvcProtectionFinalizer) && !ClaimInUse(claim))
      return RemoveFinalizer(Claims(), claim, api::kPvcProtectionFinalizer);
    return Status::Ok();
  }
  std::string volume_name(api::GetString(claim, {"spec", "volumeName"}));
  std::string_view phase = api::GetString(claim, {"status", "phase"});
  if (phase == "Bound" || phase == "Lost") {
    auto pv = volumes_->Get("", volume_name);
    bool ours = pv && api::GetString(*pv, {"spec", "claimRef", "uid"}) ==
                          api::GetString(claim, {"metadata", "uid"});
    if (!ours) {
      if (phase == "Lost") return Status::Ok();
      // A volume not yet in the cache is not lost: ask the API.
      auto fresh = client()->Get(Volumes(), "", volume_name);
      if (fresh.ok() && api::GetString(*fresh, {"spec", "claimRef", "uid"}) ==
                            api::GetString(claim, {"metadata", "uid"}))
        return Status::Ok();
      EventOnce(claim, "Warning", "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!");
      return WriteStatusFields(Claims(), claim, {{"phase", "Lost"}});
    }
    return Expand(claim, *pv);
  }
  if (!volume_name.empty()) {
    // The claim names its volume.
    auto pv = volumes_->Get("", volume_name);
    if (!pv) {
      EventOnce(claim, "Normal", "FailedBinding",
                fmt::format("volume \"{}\" not found", volume_name));
      return Status::Ok();
    }
    if (!scheduler::VolumeSatisfies(*pv, claim, nullptr)) {
      EventOnce(claim, "Warning", "FailedBinding",
                fmt::format("Cannot bind to requested volume \"{}\": it is bound to a different "
                            "claim or does not satisfy this one",
                            volume_name));
      return Status::Ok();
    }
    return Bind(claim, *pv);
  }
  std::string class_name = api::ClaimClass(claim);
  std::optional<json::value> cls;
  if (!class_name.empty()) cls = classes_->Get("", class_name);
  bool wait = cls && api::GetString(*cls, {"volumeBindingMode"}) == "WaitForFirstConsumer";
  std::string selected(
      api::GetString(claim, {"metadata", "annotations", api::kSelectedNodeAnnotation}));
  if (wait && selected.empty()) {
    EventOnce(claim, "Normal", "WaitForFirstConsumer",
              "waiting for first consumer to be created before binding");
    return Status::Ok();
  }
  std::optional<scheduler::NodeInfo> node;
  if (wait) {
    if (auto n = nodes_->Get("", selected)) node = scheduler::ParseNode(*n);
  }
  auto volumes = volumes_->List();
  if (const auto* pv = scheduler::BestVolumeFor(claim, volumes, node ? &*node : nullptr))
    return Bind(claim, *pv);
  if (cls && !api::GetString(*cls, {"provisioner"}).empty()) {
    std::string provisioner(api::GetString(*cls, {"provisioner"}));
    if (api::GetString(claim, {"metadata", "annotations", api::kStorageProvisionerAnnotation}) !=
        provisioner) {
      Status s = UpdateFresh(Claims(), claim, [&](json::value& c) {
        auto& annotations = api::Child(api::Child(c.as_object(), "metadata"), "annotations");
        annotations[api::kStorageProvisionerAnnotation] = provisioner;
        annotations["volume.beta.kubernetes.io/storage-provisioner"] = provisioner;
      });
      if (!s.ok()) return s;
    }
    EventOnce(claim, "Normal", "ExternalProvisioning",
              fmt::format("Waiting for a volume to be created either by the external provisioner "
                          "'{}' or manually by the system administrator. If volume creation is "
                          "delayed, please verify that the provisioner is running and correctly "
                          "registered.",
                          provisioner));
    return Status::Ok();
  }
  EventOnce(claim, "Normal", "FailedBinding",
            class_name.empty() || cls
                ? std::string("no persistent volumes available for this claim and no storage "
                              "class is set")
                : fmt::format("storageclass.storage.k8s.io \"{}\" not found", class_name));
  return Status::Ok();
}

Status PersistentVolumeController::Bind(const json::value& claim, const json::value& volume) {
  std::string uid(api::GetString(claim, {"metadata", "uid"}));
  std::string pv_name(api::GetString(volume, {"metadata", "name"}));
  json::value pv = volume;
  if (api::GetString(volume, {"spec", "claimRef", "uid"}) != uid) {
    auto& obj = pv.as_object();
    bool chosen = !api::Find(volume, {"spec", "claimRef"});
    api::Child(obj, "spec")["claimRef"] =
        json::object{{"kind", "PersistentVolumeClaim"},
                     {"namespace", api::GetString(claim, {"metadata", "namespace"})},
                     {"name", api::GetString(claim, {"metadata", "name"})},
                     {"uid", uid},
                     {"apiVersion", "v1"},
                     {"resourceVersion", api::GetString(claim, {"metadata", "resourceVersion"})}};
    if (chosen) api::Child(api::Child(obj, "metadata"), "annotations")[kBoundByController] = "yes";
    auto updated = client()->Update(Volumes(), "", pv);
    if (!updated.ok()) return updated.status();
    pv = std::move(*updated);
  }
  KISO_RETURN_IF_ERROR(SetVolumePhase(pv, "Bound"));
  json::value next = claim;
  if (api::GetString(claim, {"spec", "volumeName"}) != pv_name ||
      api::GetString(claim, {"metadata", "annotations", kBindCompleted}) != "yes") {
    auto& obj = next.as_object();
    bool chosen = api::GetString(claim, {"spec", "volumeName"}).empty();
    api::Child(obj, "spec")["volumeName"] = pv_name;
    auto& annotations = api::Child(api::Child(obj, "metadata"), "annotations");
    annotations[kBindCompleted] = "yes";
    if (chosen) annotations[kBoundByController] = "yes";
    auto updated =
        client()->Update(Claims(), api::GetString(claim, {"metadata", "namespace"}), next);
    if (!updated.ok()) return updated.status();
    next = std::move(*updated);
  }
  json::object status{{"phase", "Bound"}};
  if (const auto* cap = api::Find(pv, {"spec", "capacity"})) status["capacity"] = *cap;
  if (const auto* modes = api::Find(pv, {"spec", "accessModes"})) status["accessModes"] = *modes;
  Status s = WriteStatusFields(Claims(), next, status);
  if (s.ok()) {
    RecordEvent(claim, "Normal", "Bound",
                fmt::format("Successfully bound to volume \"{}\"", pv_name));
  }
  return s;
}

Status PersistentVolumeController::Expand(const json::value& claim, const json::value& volume) {
  const auto* want = api::Find(claim, {"spec", "resources", "requests", "storage"});
  const auto* have = api::Find(volume, {"spec", "capacity", "storage"});
  if (!want) return Status::Ok();
  if (scheduler::StorageBytes(want) > scheduler::StorageBytes(have)) {
    auto cls = classes_->Get("", api::ClaimClass(claim));
    const auto* allow = cls ? api::Find(*cls, {"allowVolumeExpansion"}) : nullptr;
    if (!allow || !allow->is_bool() || !allow->get_bool()) return Status::Ok();
    json::value grown = *want;
    KISO_RETURN_IF_ERROR(UpdateFresh(Volumes(), volume, [&](json::value& pv) {
      api::Child(api::Child(pv.as_object(), "spec"), "capacity")["storage"] = grown;
    }));
    RecordEvent(claim, "Normal", "VolumeResizeSuccessful",
                fmt::format("resize volume \"{}\" to {} succeeded",
                            api::GetString(volume, {"metadata", "name"}), grown.as_string()));
    have = want;
  }
  // The claim's capacity follows its volume's.
  const auto* shown = api::Find(claim, {"status", "capacity", "storage"});
  if (have && scheduler::StorageBytes(shown) < scheduler::StorageBytes(have))
    return WriteStatusFields(Claims(), claim, {{"capacity", json::object{{"storage", *have}}}});
  return Status::Ok();
}

Status PersistentVolumeController::SyncVolume(const json::value& volume) {
  std::string_view phase = api::GetString(volume, {"status", "phase"});
  if (Deleting(volume)) {
    if (HasFinalizer(volume, api::kPvProtectionFinalizer) && phase != "Bound")
      return RemoveFinalizer(Volumes(), volume, api::kPvProtectionFinalizer);
    return Status::Ok();
  }
  const auto* ref = api::Find(volume, {"spec", "claimRef"});
  if (!ref || !ref->is_object()) return SetVolumePhase(volume, "Available");
  std::string ns(api::GetString(*ref, {"namespace"}));
  std::string name(api::GetString(*ref, {"name"}));
  std::string_view uid = api::GetString(*ref, {"uid"});
  auto claim = claims_->Get(ns, name);
  if (!claim && !uid.empty()) {
    // Gone from the cache, or not in it yet: the API decides.
    auto fresh = client()->Get(Claims(), ns, name);
    if (fresh.ok()) {
      claim = std::move(*fresh);
    } else if (fresh.status().code() != Code::kNotFound) {
      return fresh.status();
    }
  }
  bool same = claim && (uid.empty() || api::GetString(*claim, {"metadata", "uid"}) == uid);
  if (same || (!claim && uid.empty())) {
    // Kept for its claim, or bound to it.
    bool bound = claim && api::GetString(*claim, {"spec", "volumeName"}) ==
                              api::GetString(volume, {"metadata", "name"});
    if (!bound) {
      if (claim) Enqueue(KeyOf(*claim));
      return SetVolumePhase(volume, "Available");
    }
    return SetVolumePhase(volume, "Bound");
  }
  // Its claim is gone: Released, then the reclaim policy.
  if (phase == "Failed") return Status::Ok();
  std::string_view policy = api::GetString(volume, {"spec", "persistentVolumeReclaimPolicy"});
  if (policy == "Delete" &&
      api::GetString(volume, {"metadata", "annotations", api::kProvisionedByAnnotation}).empty()) {
    std::string message = fmt::format(
        "error getting deleter volume plugin for volume \"{}\": no deletable volume plugin matched",
        api::GetString(volume, {"metadata", "name"}));
    EventOnce(volume, "Warning", "VolumeFailedDelete", message);
    return SetVolumePhase(volume, "Failed", message);
  }
  if (policy == "Recycle") {
    EventOnce(volume, "Warning", "VolumeFailedRecycle", "recycling is not supported by kiso");
    return SetVolumePhase(volume, "Failed", "recycling is not supported by kiso");
  }
  return SetVolumePhase(volume, "Released");
}

}  // namespace kiso::controller
