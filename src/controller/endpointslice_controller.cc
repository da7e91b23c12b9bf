#include "controller/endpointslice_controller.h"

#include <algorithm>
#include <boost/json.hpp>

#include "api/object.h"
#include "controller/service_endpoints.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

constexpr std::string_view kServiceName = "kubernetes.io/service-name";
constexpr std::string_view kManagedBy = "endpointslice.kubernetes.io/managed-by";
constexpr std::string_view kController = "endpointslice-controller.k8s.io";
constexpr std::string_view kMirroring = "endpointslicemirroring-controller.k8s.io";
constexpr std::string_view kSkipMirror = "endpointslice.kubernetes.io/skip-mirror";
constexpr std::string_view kWeights = "kiso.dev/weights";
constexpr size_t kMaxEndpoints = 100;  // Upstream's --max-endpoints-per-slice default.

const api::ResourceType& Services() { return *api::FindResource("", "v1", "services"); }
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Endpoints() { return *api::FindResource("", "v1", "endpoints"); }
const api::ResourceType& Slices() {
  return *api::FindResource("discovery.k8s.io", "v1", "endpointslices");
}

// The Endpoints object's addresses as endpoints (for a Service without a selector).
std::vector<PodEndpoint> Mirrored(const json::value& endpoints) {
  std::vector<PodEndpoint> out;
  const auto* subsets = api::Find(endpoints, {"subsets"});
  if (!subsets || !subsets->is_array()) return out;
  for (const auto& subset : subsets->get_array()) {
    json::array ports;
    if (const auto* p = api::Find(subset, {"ports"}); p && p->is_array()) ports = p->get_array();
    for (std::string_view list : {"addresses", "notReadyAddresses"}) {
      const auto* addresses = api::Find(subset, {list});
      if (!addresses || !addresses->is_array()) continue;
      for (const auto& a : addresses->get_array()) {
        PodEndpoint e;
        e.ip = std::string(api::GetString(a, {"ip"}));
        e.ready = e.serving = list == "addresses";
        e.hostname = std::string(api::GetString(a, {"hostname"}));
        e.node_name = std::string(api::GetString(a, {"nodeName"}));
        if (const auto* t = api::Find(a, {"targetRef"}); t && t->is_object())
          e.target_ref = t->get_object();
        e.ports = ports;
        if (!e.ip.empty()) out.push_back(std::move(e));
      }
    }
  }
  return out;
}

json::object SliceEndpoint(const PodEndpoint& e) {
  json::object out{
      {"addresses", json::array{json::string(e.ip)}},
      {"conditions",
       json::object{{"ready", e.ready}, {"serving", e.serving}, {"terminating", e.terminating}}}};
  if (!e.hostname.empty()) out["hostname"] = e.hostname;
  if (!e.node_name.empty()) out["nodeName"] = e.node_name;
  if (!e.target_ref.empty()) out["targetRef"] = e.target_ref;
  return out;
}

// The parts of a slice this controller decides.
struct Desired {
  json::array endpoints;
  json::array ports;
  json::object weights;  // ip → weight, for weights other than 1.
};

bool Matches(const json::value& slice, const Desired& d) {
  const json::value none;
  const auto* endpoints = api::Find(slice, {"endpoints"});
  const auto* ports = api::Find(slice, {"ports"});
  std::string_view weights = api::GetString(slice, {"metadata", "annotations", kWeights});
  return (endpoints ? *endpoints : json::value(json::array())) == d.endpoints &&
         (ports ? *ports : json::value(json::array())) == d.ports &&
         weights == (d.weights.empty() ? std::string() : json::serialize(d.weights));
}

void Fill(json::object& slice, const Desired& d) {
  slice["endpoints"] = d.endpoints;
  slice["ports"] = d.ports;
  auto& annotations = api::Child(api::Child(slice, "metadata"), "annotations");
  if (d.weights.empty()) {
    annotations.erase(kWeights);
  } else {
    annotations[kWeights] = json::serialize(d.weights);
  }
}

}  // namespace

EndpointSliceController::EndpointSliceController(client::Client* client,
                                                 client::SharedInformers* shared)
    : Controller(client, "endpointslice-controller", 2, shared) {
  services_ = Watch(Services(), [this](const json::value*, const json::value& svc, bool deleted) {
    if (deleted) expectations_.Forget(KeyOf(svc));
    Enqueue(KeyOf(svc));
  });
  pods_ = Watch(Pods(), [this](const json::value* old, const json::value& pod, bool) {
    for (const auto& key : ServicesSelecting(services_->Items(), old, pod)) Enqueue(key);
  });
  endpoints_ = Watch(Endpoints(), [this](const json::value*, const json::value& ep, bool) {
    Enqueue(KeyOf(ep));  // A Service without a selector mirrors them.
  });
  slices_ = Watch(Slices(), [this](const json::value* old, const json::value& slice, bool deleted) {
    for (const auto& key : slice_index_.Observe(old, slice, deleted)) {
      if (deleted) {
        expectations_.Deleted(key);
      } else if (!old) {
        expectations_.Created(key);
      }
      Enqueue(key);
    }
  });
}

Status EndpointSliceController::Reconcile(const std::string& key) {
  const auto [ns_part, name_part] = SplitKey(key);
  const std::string& ns = ns_part;
  const std::string& name = name_part;
  if (!expectations_.Satisfied(key)) return Status::Ok();  // Its own writes come back first.
  auto svc = services_->Get(ns, name);

  // What the slices should say.
  std::string_view manager = kController;
  std::vector<PodEndpoint> endpoints;
  bool managed = false;
  if (svc) {
    const auto* selector = api::Find(*svc, {"spec", "selector"});
    if (selector && selector->is_object() && !selector->get_object().empty()) {
      endpoints = SelectedEndpoints(*svc, pods_->Items());
      managed = true;
    } else if (auto ep = endpoints_->Get(ns, name);
               ep && api::GetString(*ep, {"metadata", "labels", kSkipMirror}) != "true") {
      endpoints = Mirrored(*ep);
      manager = kMirroring;
      managed = true;
    }
  }
  std::map<std::string, std::vector<const PodEndpoint*>> by_ports;  // Ports JSON → endpoints.
  for (const auto& e : endpoints) by_ports[json::serialize(e.ports)].push_back(&e);
  std::vector<Desired> desired;
  for (auto& [ports_json, list] : by_ports) {
    for (size_t i = 0; i < list.size(); i += kMaxEndpoints) {
      Desired d;
      for (const auto& port :
           list[i]->ports) {  // A slice's port always has a name ("" or its own).
        json::object p = port.as_object();
        if (!p.contains("name")) p["name"] = "";
        d.ports.push_back(std::move(p));
      }
      for (size_t j = i; j < list.size() && j < i + kMaxEndpoints; ++j) {
        d.endpoints.push_back(SliceEndpoint(*list[j]));
        if (list[j]->weight != 1) d.weights[list[j]->ip] = list[j]->weight;
      }
      desired.push_back(std::move(d));
    }
  }
  // A selector that selects nothing still has one (empty) slice, as upstream keeps.
  if (managed && desired.empty() && manager == kController) desired.emplace_back();

  // The slices there are, oldest name first.
  std::vector<json::value> have;
  for (const auto& slice_name : slice_index_.Of(key)) {
    auto slice = slices_->Get(ns, slice_name);
    if (!slice || api::GetString(*slice, {"metadata", "labels", kServiceName}) != name) continue;
    std::string_view by = api::GetString(*slice, {"metadata", "labels", kManagedBy});
    if (by == kController || by == kMirroring) have.push_back(std::move(*slice));
  }
  std::sort(have.begin(), have.end(), [](const json::value& a, const json::value& b) {
    return api::GetString(a, {"metadata", "name"}) < api::GetString(b, {"metadata", "name"});
  });

  // Update in place, then create or delete the difference.
  size_t n = std::min(have.size(), desired.size());
  for (size_t i = 0; i < n; ++i) {
    if (Matches(have[i], desired[i]) &&
        api::GetString(have[i], {"metadata", "labels", kManagedBy}) == manager)
      continue;
    KISO_RETURN_IF_ERROR(UpdateFresh(Slices(), have[i], [&](json::value& slice) {
      Fill(slice.as_object(), desired[i]);
      api::Child(api::Child(slice.as_object(), "metadata"), "labels")[kManagedBy] = manager;
    }));
  }
  if (desired.size() > n) {
    expectations_.Expect(key, static_cast<int>(desired.size() - n), 0);
    for (size_t i = n; i < desired.size(); ++i) {
      json::object meta{{"generateName", name + "-"},
                        {"namespace", ns},
                        {"labels", json::object{{kServiceName, name}, {kManagedBy, manager}}},
                        {"ownerReferences", json::array{json::object{
                                                {"apiVersion", "v1"},
                                                {"kind", "Service"},
                                                {"name", name},
                                                {"uid", api::GetString(*svc, {"metadata", "uid"})},
                                                {"controller", true},
                                                {"blockOwnerDeletion", true}}}}};
      json::object slice{{"apiVersion", "discovery.k8s.io/v1"},
                         {"kind", "EndpointSlice"},
                         {"metadata", std::move(meta)},
                         {"addressType", "IPv4"}};
      Fill(slice, desired[i]);
      auto res = client()->Create(Slices(), ns, slice);
      if (!res.ok()) {
        expectations_.Created(key);  // Will never be seen.
        return res.status();
      }
    }
  }
  if (have.size() > n) {
    expectations_.Expect(key, 0, static_cast<int>(have.size() - n));
    for (size_t i = n; i < have.size(); ++i) {
      Status s = client()->Delete(Slices(), ns, api::GetString(have[i], {"metadata", "name"}));
      if (!s.ok()) {
        expectations_.Deleted(key);
        if (s.code() != Code::kNotFound) return s;
      }
    }
  }
  return Status::Ok();
}

}  // namespace kiso::controller
