#include "api/warnings.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <string_view>

#include "api/object.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

struct Deprecation {
  std::string_view name;
  std::string_view message;
};

constexpr std::array<Deprecation, 5> kNodeLabels = {{
    {"beta.kubernetes.io/arch", R"(deprecated since v1.14; use "kubernetes.io/arch" instead)"},
    {"beta.kubernetes.io/os", R"(deprecated since v1.14; use "kubernetes.io/os" instead)"},
    {"failure-domain.beta.kubernetes.io/region",
     R"(deprecated since v1.17; use "topology.kubernetes.io/region" instead)"},
    {"failure-domain.beta.kubernetes.io/zone",
     R"(deprecated since v1.17; use "topology.kubernetes.io/zone" instead)"},
    {"beta.kubernetes.io/instance-type",
     R"(deprecated since v1.17; use "node.kubernetes.io/instance-type" instead)"},
}};

constexpr std::array<Deprecation, 4> kPodAnnotations = {{
    {"scheduler.alpha.kubernetes.io/critical-pod",
     R"(non-functional in v1.16+; use the "priorityClassName" field instead)"},
    {"seccomp.security.alpha.kubernetes.io/pod",
     R"(non-functional in v1.27+; use the "seccompProfile" field instead)"},
    {"security.alpha.kubernetes.io/sysctls",
     R"(non-functional in v1.11+; use the "sysctls" field instead)"},
    {"security.alpha.kubernetes.io/unsafe-sysctls",
     R"(non-functional in v1.11+; use the "sysctls" field instead)"},
}};
constexpr std::string_view kContainerSeccompPrefix =
    "container.seccomp.security.alpha.kubernetes.io/";

constexpr std::array<Deprecation, 9> kVolumes = {{
    {"gitRepo", "deprecated in v1.11"},
    {"photonPersistentDisk", "deprecated in v1.11, non-functional in v1.16+"},
    {"scaleIO", "deprecated in v1.16, non-functional in v1.22+"},
    {"flocker", "deprecated in v1.22, non-functional in v1.25+"},
    {"storageos", "deprecated in v1.22, non-functional in v1.25+"},
    {"quobyte", "deprecated in v1.22, non-functional in v1.25+"},
    {"glusterfs", "deprecated in v1.25, non-functional in v1.26+"},
    {"rbd", "deprecated in v1.28, non-functional in v1.31+"},
    {"cephfs", "deprecated in v1.28, non-functional in v1.31+"},
}};

const json::object* ObjectAt(const json::value* v) {
  return v && v->is_object() ? &v->get_object() : nullptr;
}
const json::array* ArrayAt(const json::value* v) {
  return v && v->is_array() ? &v->get_array() : nullptr;
}

std::string_view NodeLabelDeprecation(std::string_view key) {
  for (const auto& d : kNodeLabels) {
    if (d.name == key) return d.message;
  }
  return {};
}

// Node selector terms' expressions: "<path>[i].matchExpressions[j].key: <key> is <message>".
void TermWarnings(const json::array& terms, const std::string& path, std::string_view inner,
                  std::vector<std::string>& out) {
  for (size_t i = 0; i < terms.size(); ++i) {
    const json::object* term = ObjectAt(&terms[i]);
    if (term && !inner.empty()) term = ObjectAt(term->if_contains(inner));
    const json::array* expressions =
        term ? ArrayAt(term->if_contains("matchExpressions")) : nullptr;
    if (expressions == nullptr) continue;
    for (size_t j = 0; j < expressions->size(); ++j) {
      std::string_view key = GetString((*expressions)[j], {"key"});
      if (auto message = NodeLabelDeprecation(key); !message.empty()) {
        out.push_back(fmt::format("{}[{}]{}.matchExpressions[{}].key: {} is {}", path, i,
                                  inner.empty() ? "" : "." + std::string(inner), j, key, message));
      }
    }
  }
}

// A pod (path "") or pod template (path "spec.template."): its metadata and spec.
void PodWarnings(const json::object& pod, const std::string& path, std::vector<std::string>& out) {
  if (const auto* annotations = ObjectAt(Find(pod, {"metadata", "annotations"}))) {
    // In the order of the list; of the per-container seccomp annotations, the first.
    for (const auto& d : kPodAnnotations) {
      if (annotations->contains(d.name))
        out.push_back(fmt::format("{}metadata.annotations[{}]: {}", path, d.name, d.message));
      if (d.name != kPodAnnotations[1].name) continue;
      for (const auto& [key, value] : *annotations) {
        if (std::string_view(key).starts_with(kContainerSeccompPrefix)) {
          out.push_back(fmt::format("{}metadata.annotations[{}]: {}", path, std::string_view(key),
                                    d.message));
          break;
        }
      }
    }
  }
  const json::object* spec = ObjectAt(pod.if_contains("spec"));
  if (spec == nullptr) return;
  if (const auto* selector = ObjectAt(spec->if_contains("nodeSelector"))) {
    for (const auto& [key, value] : *selector) {
      if (auto message = NodeLabelDeprecation(key); !message.empty()) {
        out.push_back(
            fmt::format("{}spec.nodeSelector[{}]: {}", path, std::string_view(key), message));
      }
    }
  }
  std::string affinity = path + "spec.affinity.nodeAffinity.";
  if (const auto* terms = ArrayAt(
          Find(*spec, {"affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                       "nodeSelectorTerms"}))) {
    TermWarnings(*terms,
                 affinity + "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", "",
                 out);
  }
  if (const auto* preferred =
          ArrayAt(Find(*spec, {"affinity", "nodeAffinity",
                               "preferredDuringSchedulingIgnoredDuringExecution"}))) {
    TermWarnings(*preferred, affinity + "preferredDuringSchedulingIgnoredDuringExecution",
                 "preference", out);
  }
  if (const auto* volumes = ArrayAt(spec->if_contains("volumes"))) {
    for (size_t i = 0; i < volumes->size(); ++i) {
      const json::object* volume = ObjectAt(&(*volumes)[i]);
      if (volume == nullptr) continue;
      for (const auto& d : kVolumes) {
        if (volume->contains(d.name))
          out.push_back(fmt::format("{}spec.volumes[{}].{}: {}", path, i, d.name, d.message));
      }
    }
  }
}

std::vector<std::string> Warnings(const ResourceType& type, const json::object& obj) {
  std::vector<std::string> out;
  if (type.custom) return out;  // A custom kind named like a built-in one is not it.
  const std::string& kind = type.kind;
  if (kind == "Pod") {
    PodWarnings(obj, "", out);
  } else if (kind == "Deployment" || kind == "ReplicaSet" || kind == "DaemonSet" ||
             kind == "StatefulSet" || kind == "Job" || kind == "ReplicationController") {
    if (const auto* t = ObjectAt(Find(obj, {"spec", "template"})))
      PodWarnings(*t, "spec.template.", out);
  } else if (kind == "CronJob") {
    if (const auto* t = ObjectAt(Find(obj, {"spec", "jobTemplate", "spec", "template"})))
      PodWarnings(*t, "spec.jobTemplate.spec.template.", out);
  } else if (kind == "Ingress" &&
             Find(obj, {"metadata", "annotations", "kubernetes.io/ingress.class"}) != nullptr) {
    out.emplace_back(
        R"(annotation "kubernetes.io/ingress.class" is deprecated, please use 'spec.ingressClassName' instead)");
  }
  return out;
}

}  // namespace

std::vector<std::string> WarningsFor(const ResourceType& type, const json::object& obj,
                                     const json::object* old) {
  std::vector<std::string> out = Warnings(type, obj);
  if (old == nullptr || out.empty()) return out;
  std::vector<std::string> before = Warnings(type, *old);
  std::erase_if(out, [&](const std::string& w) {
    return std::find(before.begin(), before.end(), w) != before.end();
  });
  return out;
}

}  // namespace kiso::api
