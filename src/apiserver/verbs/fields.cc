#include "apiserver/verbs/fields.h"

#include <boost/json.hpp>
#include <map>

#include "api/object.h"

namespace kiso::apiserver {

namespace json = boost::json;

const std::vector<std::string>& FieldSelectorFields(std::string_view kind) {
  static const auto& kFields = *new std::map<std::string, std::vector<std::string>, std::less<>>{
      {"Pod",
       {"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
        "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
        "status.podIP", "status.nominatedNodeName"}},
      {"Event",
       {"metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace",
        "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
        "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
        "reportingComponent", "source", "type"}},
      {"Node", {"metadata.name", "metadata.namespace", "spec.unschedulable"}},
      {"Namespace", {"metadata.name", "metadata.namespace", "status.phase"}},
      {"Secret", {"metadata.name", "metadata.namespace", "type"}},
      {"ReplicaSet", {"metadata.name", "metadata.namespace", "status.replicas"}},
      {"ReplicationController", {"metadata.name", "metadata.namespace", "status.replicas"}},
      {"Job", {"metadata.name", "metadata.namespace", "status.successful"}},
  };
  static const auto& kDefault =
      *new std::vector<std::string>{"metadata.name", "metadata.namespace"};
  auto it = kFields.find(kind);
  return it == kFields.end() ? kDefault : it->second;
}

std::string FieldValue(const json::value& obj, std::string_view field) {
  if (field == "source") return std::string(api::GetString(obj, {"source", "component"}));
  if (field == "status.successful") {
    const auto* v = api::Find(obj, {"status", "succeeded"});
    return v && v->is_int64() ? std::to_string(v->get_int64()) : "0";
  }
  // Walk the dotted path.
  const json::value* cur = &obj;
  size_t start = 0;
  while (cur && start <= field.size()) {
    size_t dot = field.find('.', start);
    std::string_view part = field.substr(start, dot == std::string_view::npos ? dot : dot - start);
    const auto* o = cur->if_object();
    cur = o ? o->if_contains(part) : nullptr;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (!cur || cur->is_null()) {
    if (field == "spec.unschedulable" || field == "spec.hostNetwork") return "false";
    return "";
  }
  if (cur->is_string()) return std::string(cur->get_string());
  if (cur->is_bool()) return cur->get_bool() ? "true" : "false";
  if (cur->is_int64()) return std::to_string(cur->get_int64());
  return json::serialize(*cur);
}

}  // namespace kiso::apiserver
