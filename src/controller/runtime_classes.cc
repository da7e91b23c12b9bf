#include "controller/runtime_classes.h"

#include <boost/json.hpp>

#include "api/resources.h"

namespace kiso::controller {

Status EnsureDefaultRuntimeClasses(client::Client* client) {
  const api::ResourceType& classes = *api::FindResource("node.k8s.io", "v1", "runtimeclasses");
  for (const char* handler : {"runc", "crun", "wasm"}) {
    boost::json::value rc =
        boost::json::object{{"apiVersion", "node.k8s.io/v1"},
                            {"kind", "RuntimeClass"},
                            {"metadata", boost::json::object{{"name", handler}}},
                            {"handler", handler}};
    auto made = client->Create(classes, "", rc);
    if (!made.ok() && made.status().code() != Code::kAlreadyExists) return made.status();
  }
  return Status::Ok();
}

}  // namespace kiso::controller
