// The resource types kiso serves: what discovery lists, what the API server
// routes, and where each kind lives in the store. One table, built in
// resources.cc; nothing else hard-codes a kind.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiso::api {

struct CustomResourceInfo;  // api/custom_resource.h

struct Subresource {
  std::string name;   // "status", "scale", "log", "exec"…
  std::string group;  // Of the response kind when it differs (autoscaling for scale).
  std::string version;
  std::string kind;  // Response kind: the parent's kind for status, "Scale" for scale.
  std::vector<std::string> verbs;
};

struct ResourceType {
  std::string group;  // "" for the core group.
  std::string version;
  std::string kind;
  std::string plural;
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  std::vector<Subresource> subresources;
  // Fields the main endpoint owns; the rest (status) only change through /status.
  bool has_status = false;
  // The real API server's generation rule: bumped on changes to everything but
  // metadata and status (for most kinds that is `spec`).
  std::vector<std::string> verbs = {"create", "delete", "deletecollection", "get",
                                    "list",   "patch",  "update",           "watch"};
  // False for reviews: a create is answered, nothing is stored.
  bool stored = true;
  // Set for the kinds a CustomResourceDefinition adds: its schema, columns…
  std::shared_ptr<const CustomResourceInfo> custom;
  // A kind served at more than one version is stored at one of them (as
  // upstream's storage version): set here for the others (autoscaling/v1's
  // HorizontalPodAutoscaler says "v2"); requests at this version are
  // converted on the way in and out (api/conversion.h).
  std::string storage_version;
  // …and its group, when that differs (events.k8s.io/v1 Events are core/v1's).
  std::optional<std::string> storage_group;
  // The declared type (schema_types.cc) of the kind at this version; empty
  // for the kind's own name.
  std::string schema_type;

  std::string_view Schema() const { return schema_type.empty() ? kind : schema_type; }
  // The type objects of this kind are stored as: this one, or the storage version's.
  const ResourceType& Storage() const;

  std::string GroupVersion() const { return group.empty() ? version : group + "/" + version; }
  // Whether the type is served with `verb` (reviews only with create).
  bool Allows(std::string_view verb) const {
    return std::find(verbs.begin(), verbs.end(), verb) != verbs.end();
  }
  // "pods", "deployments.apps": how errors name the resource.
  std::string Qualified() const { return group.empty() ? plural : plural + "." + group; }
  // The store prefix of every object of this type: /registry/<group|core>/<plural>/.
  std::string StorePrefix() const;
  // The store key of one object ("" namespace for cluster-scoped types).
  std::string StoreKey(std::string_view ns, std::string_view name) const;
  const Subresource* FindSubresource(std::string_view name) const;
};

// Every built-in type, in discovery order (groups in the order the real server lists them).
const std::vector<ResourceType>& BuiltinResources();

// The built-in types, then those of the CustomResourceDefinitions being served.
std::vector<const ResourceType*> AllResources();

// Replaces the custom types served (the API server publishes those of every
// established CustomResourceDefinition). A pointer FindResource or FindKind
// returned stays valid for the life of the process: a type that goes is kept,
// and the same definition published again is the same type.
void PublishCustomResources(std::vector<ResourceType> types);

// Looks up by group, version and plural; nullptr if not served.
const ResourceType* FindResource(std::string_view group, std::string_view version,
                                 std::string_view plural);
// Looks up by apiVersion ("v1", "apps/v1") and kind; nullptr if not served.
const ResourceType* FindKind(std::string_view api_version, std::string_view kind);

// Groups in discovery order, each group's versions in order of preference.
struct GroupVersion {
  std::string group;
  std::string version;
};
std::vector<GroupVersion> ServedGroupVersions();

// Kubernetes' version priority (v1 > v1beta2 > v1beta1 > v1alpha1 > foo): true
// when `a` is preferred to `b`.
bool VersionPreferred(std::string_view a, std::string_view b);

}  // namespace kiso::api
