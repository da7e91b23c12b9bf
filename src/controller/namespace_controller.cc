#include "controller/namespace_controller.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

NamespaceController::NamespaceController(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "namespace-controller", 1, shared) {
  namespaces_ =
      Watch(*api::FindResource("", "v1", "namespaces"),
            [this](const json::value*, const json::value& obj, bool deleted) {
              if (!deleted && !api::GetString(obj, {"metadata", "deletionTimestamp"}).empty())
                Enqueue(std::string(api::GetString(obj, {"metadata", "name"})));
            });
}

Status NamespaceController::Reconcile(const std::string& name) {
  auto ns = namespaces_->Get("", name);
  if (!ns || api::GetString(*ns, {"metadata", "deletionTimestamp"}).empty()) return Status::Ok();
  int remaining = 0;
  for (const auto* t : api::AllResources()) {  // Custom resources too.
    const api::ResourceType& type = *t;
    if (!type.namespaced || !type.Allows("deletecollection")) continue;
    if (!type.storage_version.empty()) continue;  // Deleted at the version it is stored at.
    Status s = client()->DeleteCollection(type, name);
    if (!s.ok()) return s.Annotate("delete " + type.plural);
    client::ListOptions options;
    options.limit = 1;
    auto left = client()->List(type, name, options);
    const auto* items = left.ok() ? api::Find(*left, {"items"}) : nullptr;
    if (!items || !items->is_array() || !items->get_array().empty()) ++remaining;
  }
  if (remaining > 0) {
    // Objects finishing graceful deletion (pods on a node, finalizers) take a while.
    return MakeStatus(Code::kUnavailable, "{} kinds of objects are still being deleted", remaining);
  }
  json::value finalize = *ns;
  api::Child(finalize.get_object(), "spec")["finalizers"] = json::array();
  auto res = client()->Update(*api::FindResource("", "v1", "namespaces"), "", finalize, "finalize");
  if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
  return Status::Ok();
}

}  // namespace kiso::controller
