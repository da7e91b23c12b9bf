// Storage admission, as kube-apiserver's plugins of the same names:
// - DefaultStorageClass: a claim created without spec.storageClassName gets
//   the StorageClass annotated storageclass.kubernetes.io/is-default-class=true
//   (the newest, when several are); an explicit "" means no class.
// - StorageObjectInUseProtection: claims and volumes are created with the
//   kubernetes.io/pvc-protection and kubernetes.io/pv-protection finalizers,
//   which the protection controllers remove once nothing uses them.
// - PersistentVolumeClaimResize: a claim's storage request grows only when it
//   is bound and its class allows volume expansion.
#include "api/storage.h"

#include <boost/json.hpp>

#include "api/object.h"
#include "api/validation.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

bool IsClaims(const Target& t) {
  return t.type->group.empty() && t.type->plural == "persistentvolumeclaims" &&
         t.subresource.empty();
}

class DefaultStorageClass : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "DefaultStorageClass"; }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& claim) const override {
    if (!IsClaims(*r.target) || r.operation != "CREATE") return std::nullopt;
    const auto* cls = api::Find(claim, {"spec", "storageClassName"});
    if (cls && !cls->is_null()) return std::nullopt;  // Named, or "" (no class).
    const api::ResourceType* classes = api::FindResource("storage.k8s.io", "v1", "storageclasses");
    std::string chosen, chosen_time;
    for (const auto& c : ListFromCache(*r.ctx, *classes, "")) {
      if (api::GetString(c, {"metadata", "annotations",
                             "storageclass.kubernetes.io/is-default-class"}) != "true")
        continue;
      std::string created(api::GetString(c, {"metadata", "creationTimestamp"}));
      if (chosen.empty() || created > chosen_time) {
        chosen = api::GetString(c, {"metadata", "name"});
        chosen_time = created;
      }
    }
    if (!chosen.empty()) api::Child(claim, "spec")["storageClassName"] = chosen;
    return std::nullopt;
  }
};

class StorageObjectInUseProtection : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "StorageObjectInUseProtection"; }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& obj) const override {
    const Target& t = *r.target;
    if (r.operation != "CREATE" || !t.subresource.empty() || !t.type->group.empty())
      return std::nullopt;
    std::string_view finalizer =
        t.type->plural == "persistentvolumeclaims"
            ? api::kPvcProtectionFinalizer
            : (t.type->plural == "persistentvolumes" ? api::kPvProtectionFinalizer : "");
    if (finalizer.empty()) return std::nullopt;
    auto& meta = api::Child(obj, "metadata");
    auto* list = meta.if_contains("finalizers");
    if (!list || !list->is_array()) list = &(meta["finalizers"] = json::array());
    for (const auto& f : list->get_array())
      if (f.is_string() && f.get_string() == finalizer) return std::nullopt;
    list->get_array().emplace_back(finalizer);
    return std::nullopt;
  }
};

class PersistentVolumeClaimResize : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "PersistentVolumeClaimResize"; }

  api::ApiStatus Validate(const AdmissionRequest& r, const json::object& claim) const override {
    if (!IsClaims(*r.target) || r.operation != "UPDATE" || !r.old) return std::nullopt;
    long double want = 0;
    long double had = 0;
    if (!api::ParseQuantityMilli(
            api::GetString(claim, {"spec", "resources", "requests", "storage"}), &want) ||
        !api::ParseQuantityMilli(
            api::GetString(*r.old, {"spec", "resources", "requests", "storage"}), &had) ||
        want <= had) {
      return std::nullopt;
    }
    std::string name(api::GetString(claim, {"metadata", "name"}));
    if (api::GetString(*r.old, {"spec", "volumeName"}).empty() ||
        api::GetString(*r.old, {"status", "phase"}) != "Bound") {
      return AdmissionForbidden(*r.target, name,
                                "spec.resources.requests.storage: Forbidden: only bound "
                                "persistent volume claims can be resized");
    }
    const api::ResourceType* classes = api::FindResource("storage.k8s.io", "v1", "storageclasses");
    auto cls =
        ReadFromCache(*r.ctx, *classes, "", api::GetString(*r.old, {"spec", "storageClassName"}));
    const auto* allow = cls ? api::Find(*cls, {"allowVolumeExpansion"}) : nullptr;
    if (!allow || !allow->is_bool() || !allow->get_bool()) {
      return AdmissionForbidden(*r.target, name,
                                "only dynamically provisioned pvc can be resized and the "
                                "storageclass that provisions the pvc must support resize");
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewDefaultStorageClass() {
  return std::make_unique<DefaultStorageClass>();
}
std::unique_ptr<AdmissionPlugin> NewStorageObjectInUseProtection() {
  return std::make_unique<StorageObjectInUseProtection>();
}
std::unique_ptr<AdmissionPlugin> NewPersistentVolumeClaimResize() {
  return std::make_unique<PersistentVolumeClaimResize>();
}

}  // namespace kiso::apiserver
