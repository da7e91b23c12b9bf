#include "controller/apiserver_endpoints.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "api/object.h"
#include "api/resources.h"
#include "common/clock.h"

namespace kiso::controller {
namespace json = boost::json;

namespace {

constexpr std::string_view kIdentityLabel = "apiserver.kubernetes.io/identity";
constexpr std::string_view kAddressAnnotation = "kiso.dev/advertise-address";
constexpr std::string_view kPortAnnotation = "kiso.dev/port";

const api::ResourceType& Leases() {
  return *api::FindResource("coordination.k8s.io", "v1", "leases");
}

// Brings the fields `want` names of default/kubernetes of `type` to its values
// (a no-op when they are).
Status Keep(client::Client* client, const api::ResourceType& type, const json::object& want) {
  auto current = client->Get(type, "default", "kubernetes");
  if (!current.ok()) return current.status();
  json::object& obj = current->as_object();
  bool same = true;
  for (const auto& [field, value] : want) {
    const json::value* have = obj.if_contains(field);
    same = same && have != nullptr && *have == value;
    obj[field] = value;
  }
  if (same) return Status::Ok();
  auto updated = client->Update(type, "default", *current);
  return updated.ok() ? Status::Ok() : updated.status();
}

}  // namespace

ApiServerEndpoints::ApiServerEndpoints(client::Client* client, ApiServerEndpointsOptions options)
    : client_(client), options_(std::move(options)) {}

ApiServerEndpoints::~ApiServerEndpoints() { Stop(); }

void ApiServerEndpoints::Start() {
  thread_ = std::thread([this] {
    auto period = std::max<std::chrono::milliseconds>(options_.lease_duration / 3,
                                                      std::chrono::milliseconds(100));
    while (true) {
      if (auto s = Sync(); !s.ok()) spdlog::warn("kubernetes endpoints: {}", s.ToString());
      std::unique_lock lock(mu_);
      if (wake_.wait_for(lock, period, [this] { return stopping_; })) break;
    }
  });
}

void ApiServerEndpoints::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  auto deleted = client_->Delete(Leases(), "kube-system", "apiserver-" + options_.server_id);
  if (!deleted.ok() && deleted.code() != Code::kNotFound)
    spdlog::warn("kubernetes endpoints: delete this server's Lease: {}", deleted.ToString());
  if (auto s = Sync(/*leaving=*/true); !s.ok())
    spdlog::warn("kubernetes endpoints: leaving: {}", s.ToString());
}

Status ApiServerEndpoints::Renew() {
  const std::string name = "apiserver-" + options_.server_id;
  json::object spec{{"holderIdentity", options_.identity},
                    {"leaseDurationSeconds", options_.lease_duration.count()},
                    {"renewTime", NowRfc3339Micro()}};
  json::object annotations{{kAddressAnnotation, options_.address},
                           {kPortAnnotation, std::to_string(options_.port)}};
  auto current = client_->Get(Leases(), "kube-system", name);
  if (!current.ok()) {
    if (current.status().code() != Code::kNotFound) return current.status();
    json::value lease{{"apiVersion", "coordination.k8s.io/v1"},
                      {"kind", "Lease"},
                      {"metadata",
                       {{"name", name},
                        {"namespace", "kube-system"},
                        {"labels", {{kIdentityLabel, "kube-apiserver"}}},
                        {"annotations", annotations}}},
                      {"spec", spec}};
    auto created = client_->Create(Leases(), "kube-system", lease);
    return created.ok() ? Status::Ok() : created.status();
  }
  json::object& obj = current->as_object();
  json::object& meta = obj["metadata"].as_object();
  meta["annotations"] = annotations;
  api::Child(meta, "labels")[kIdentityLabel] = "kube-apiserver";
  obj["spec"] = spec;
  auto updated = client_->Update(Leases(), "kube-system", *current);
  return updated.ok() ? Status::Ok() : updated.status();
}

Result<std::vector<std::string>> ApiServerEndpoints::LiveAddresses() {
  client::ListOptions list;
  list.label_selector = std::string(kIdentityLabel) + "=kube-apiserver";
  KISO_ASSIGN_OR_RETURN(auto leases, client_->List(Leases(), "kube-system", list));
  const auto now = std::chrono::system_clock::now();
  std::vector<std::string> addresses;
  for (const auto& lease : api::GetArray(leases, {"items"})) {
    std::string address(api::GetString(lease, {"metadata", "annotations", kAddressAnnotation}));
    std::string port(api::GetString(lease, {"metadata", "annotations", kPortAnnotation}));
    auto renewed = ParseRfc3339(api::GetString(lease, {"spec", "renewTime"}));
    const json::value* seconds = api::Find(lease, {"spec", "leaseDurationSeconds"});
    if (address.empty() || !renewed || seconds == nullptr || !seconds->is_int64()) continue;
    if (port != std::to_string(options_.port)) continue;  // The Service has one target port.
    auto expires = std::chrono::system_clock::time_point(std::chrono::seconds(renewed->seconds) +
                                                         std::chrono::nanoseconds(renewed->nanos)) +
                   std::chrono::seconds(seconds->get_int64());
    if (expires > now) addresses.push_back(address);
  }
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  return addresses;
}

Status ApiServerEndpoints::WriteEndpoints(const std::vector<std::string>& addresses) {
  json::array ports{json::object{{"name", "https"}, {"port", options_.port}, {"protocol", "TCP"}}};
  json::array subsets;
  json::array endpoints;
  if (!addresses.empty()) {
    json::array ips;
    for (const auto& a : addresses) {
      ips.push_back(json::object{{"ip", a}});
      endpoints.push_back(
          json::object{{"addresses", json::array{json::string(a)}},
                       {"conditions",
                        json::object{{"ready", true}, {"serving", true}, {"terminating", false}}}});
    }
    subsets.push_back(json::object{{"addresses", std::move(ips)}, {"ports", ports}});
  }
  KISO_RETURN_IF_ERROR(Keep(client_, *api::FindResource("", "v1", "endpoints"),
                            json::object{{"subsets", std::move(subsets)}}));
  return Keep(client_, *api::FindResource("discovery.k8s.io", "v1", "endpointslices"),
              json::object{{"endpoints", std::move(endpoints)}, {"ports", std::move(ports)}});
}

Status ApiServerEndpoints::Sync(bool leaving) {
  if (!leaving && !options_.address.empty()) KISO_RETURN_IF_ERROR(Renew());
  KISO_ASSIGN_OR_RETURN(auto addresses, LiveAddresses());
  if (leaving) std::erase(addresses, options_.address);
  return WriteEndpoints(addresses);
}

}  // namespace kiso::controller
