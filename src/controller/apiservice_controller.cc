#include "controller/apiservice_controller.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "client/client.h"
#include "common/clock.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& ApiServices() {
  return *api::FindResource("apiregistration.k8s.io", "v1", "apiservices");
}

}  // namespace

ApiServiceAvailabilityController::ApiServiceAvailabilityController(client::Client* client,
                                                                   client::SharedInformers* shared,
                                                                   std::chrono::milliseconds period)
    : Controller(client, "apiservice-availability", 1, shared), period_(period) {
  apiservices_ =
      Watch(ApiServices(), [this](const json::value*, const json::value& s, bool deleted) {
        if (!deleted) Enqueue(KeyOf(s));
      });
  // A Service or its Endpoints changing: the APIServices that name it, at once.
  auto backend_changed = [this](const json::value*, const json::value& obj, bool) {
    std::string_view ns = api::GetString(obj, {"metadata", "namespace"});
    std::string_view name = api::GetString(obj, {"metadata", "name"});
    for (const auto& s : apiservices_->List()) {
      if (api::GetString(s, {"spec", "service", "namespace"}) == ns &&
          api::GetString(s, {"spec", "service", "name"}) == name)
        Enqueue(KeyOf(s));
    }
  };
  services_ = Watch(*api::FindResource("", "v1", "services"), backend_changed);
  endpoints_ = Watch(*api::FindResource("", "v1", "endpoints"), backend_changed);
}

Status ApiServiceAvailabilityController::Reconcile(const std::string& key) {
  const std::string name(SplitKey(key).second);
  auto found = apiservices_->Get("", name);
  if (!found) return Status::Ok();
  const json::value& apiservice = *found;
  std::string group(api::GetString(apiservice, {"spec", "group"}));
  std::string version(api::GetString(apiservice, {"spec", "version"}));
  bool available = true;
  std::string reason = "Local", message = "Local APIServices are always available";
  if (const auto* ref = api::Find(apiservice, {"spec", "service"}); ref && ref->is_object()) {
    EnqueueAfter(key, period_);  // A backend comes and goes without any write here.
    std::string ns(api::GetString(*ref, {"namespace"}));
    std::string svc(api::GetString(*ref, {"name"}));
    // From the informers this controller watches them with (no request per check).
    auto service = services_->Get(ns, svc);
    auto endpoints = endpoints_->Get(ns, svc);
    bool ready = false;
    if (endpoints) {
      for (const auto& subset : api::GetArray(*endpoints, {"subsets"}))
        ready = ready || !api::GetArray(subset, {"addresses"}).empty();
    }
    if (!service) {
      available = false;
      reason = "ServiceNotFound";
      message = fmt::format("service/{} in \"{}\" is not present", svc, ns);
    } else if (!ready) {
      available = false;
      reason = "MissingEndpoints";
      message = fmt::format("endpoints for service/{} in \"{}\" have no addresses", svc, ns);
    } else if (auto probe = client()->GetPath(fmt::format("/apis/{}/{}", group, version));
               !probe.ok()) {
      available = false;
      reason = "FailedDiscoveryCheck";
      message =
          fmt::format("failing or missing response from the {}/{} service for /apis/{}/{}: {}", ns,
                      svc, group, version, probe.status().message());
    } else {
      reason = "Passed";
      message = "all checks passed";
    }
  }
  // Condition Available, its transition time kept while its status stays.
  const std::string status = available ? "True" : "False";
  json::object condition{
      {"type", "Available"}, {"status", status}, {"reason", reason}, {"message", message}};
  json::array conditions;
  std::string since = FormatRfc3339(std::chrono::system_clock::now());
  for (const auto& c : api::GetArray(apiservice, {"status", "conditions"})) {
    if (api::GetString(c, {"type"}) != "Available") {
      conditions.push_back(c);
    } else if (api::GetString(c, {"status"}) == status) {
      since = std::string(api::GetString(c, {"lastTransitionTime"}));
    }
  }
  condition["lastTransitionTime"] = since;
  conditions.push_back(std::move(condition));
  json::object want{{"conditions", std::move(conditions)}};
  if (const auto* was = api::Find(apiservice, {"status"}); was && *was == json::value(want))
    return Status::Ok();
  json::value next = apiservice;
  next.as_object()["status"] = std::move(want);
  auto res = client()->Update(ApiServices(), "", next, "status");
  if (!res.ok() && res.status().code() == Code::kNotFound) return Status::Ok();
  return res.status();  // A conflict: tried again with the informer's newer copy.
}

}  // namespace kiso::controller
