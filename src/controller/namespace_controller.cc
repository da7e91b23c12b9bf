#include "controller/namespace_controller.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

NamespaceController::NamespaceController(client::Client* client) : client_(client) {
  informer_ = std::make_unique<client::Informer>(
      client_, api::FindResource("", "v1", "namespaces"),
      [this](const json::value*, const json::value& obj, bool deleted) {
        if (!deleted && !api::GetString(obj, {"metadata", "deletionTimestamp"}).empty())
          queue_.Add(std::string(api::GetString(obj, {"metadata", "name"})));
      });
}

NamespaceController::~NamespaceController() { Stop(); }

void NamespaceController::Start() {
  informer_->Start();
  worker_ = std::thread([this] {
    while (auto key = queue_.Get()) {
      Reconcile(*key);
      queue_.Done(*key);
    }
  });
}

void NamespaceController::Stop() {
  queue_.ShutDown();
  if (worker_.joinable()) worker_.join();
  informer_->Stop();
}

void NamespaceController::Reconcile(const std::string& name) {
  auto ns = informer_->Get("", name);
  if (!ns || api::GetString(*ns, {"metadata", "deletionTimestamp"}).empty()) return;
  bool remaining = false;
  for (const auto& type : api::BuiltinResources()) {
    if (!type.namespaced) continue;
    Status s = client_->DeleteCollection(type, name);
    if (!s.ok()) {
      spdlog::warn("namespace {}: delete {}: {}", name, type.plural, s.ToString());
      remaining = true;
      continue;
    }
    client::ListOptions options;
    options.limit = 1;
    auto left = client_->List(type, name, options);
    const auto* items = left.ok() ? api::Find(*left, {"items"}) : nullptr;
    if (!items || !items->is_array() || !items->get_array().empty()) remaining = true;
  }
  if (remaining) {
    // Objects finishing graceful deletion (pods on a node, finalizers) take a while.
    queue_.AddAfter(name, std::chrono::seconds(1));
    return;
  }
  json::value finalize = *ns;
  api::Child(finalize.get_object(), "spec")["finalizers"] = json::array();
  auto res = client_->Update(*api::FindResource("", "v1", "namespaces"), "", finalize, "finalize");
  if (!res.ok() && res.status().code() != Code::kNotFound) {
    spdlog::warn("namespace {}: finalize: {}", name, res.status().ToString());
    queue_.AddAfter(name, std::chrono::seconds(1));
  }
}

}  // namespace kiso::controller
