#include "dns/cluster_dns.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/resources.h"

namespace kiso::dns {

namespace json = boost::json;

namespace {

using api::KeyOf;

}  // namespace

Result<std::unique_ptr<ClusterDns>> ClusterDns::Start(client::Client* client,
                                                      client::SharedInformers* informers,
                                                      ClusterDnsOptions options) {
  std::unique_ptr<ClusterDns> d(new ClusterDns(std::move(options)));
  KISO_ASSIGN_OR_RETURN(d->server_, DnsServer::Start(&d->zone_, d->options_.server));
  ClusterDns* self = d.get();
  d->services_ = informers->For(*api::FindResource("", "v1", "services"));
  d->slices_ = informers->For(*api::FindResource("discovery.k8s.io", "v1", "endpointslices"));
  d->handlers_.emplace_back(
      d->services_, d->services_->AddHandler([self](const json::value*, const json::value& svc,
                                                    bool) { self->Refresh(KeyOf(svc)); }));
  d->handlers_.emplace_back(
      d->slices_, d->slices_->AddHandler(
                      [self](const json::value* old, const json::value& slice, bool deleted) {
                        for (const auto& key : self->slice_index_.Observe(old, slice, deleted))
                          self->Refresh(key);
                      }));
  informers->Start();
  if (Status s = d->SeedService(client); !s.ok()) {
    d->Stop();
    return s;
  }
  return d;
}

ClusterDns::~ClusterDns() { Stop(); }

void ClusterDns::Stop() {
  for (auto& [informer, id] : handlers_) informer->RemoveHandler(id);
  handlers_.clear();
  if (server_) server_->Stop();
}

void ClusterDns::Refresh(const std::string& key) {
  auto [ns, name] = api::SplitKey(key);
  auto svc = services_->Get(ns, name);
  std::vector<json::value> slices;
  for (const auto& n : slice_index_.Of(key)) {
    if (auto s = slices_->Get(ns, n)) slices.push_back(std::move(*s));
  }
  zone_.Update(key, svc ? &*svc : nullptr, slices);
}

Status ClusterDns::SeedService(client::Client* client) {
  const auto& services = *api::FindResource("", "v1", "services");
  const auto& endpoints = *api::FindResource("", "v1", "endpoints");
  const int64_t port = server_->port();
  json::array ports{
      json::object{{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}, {"targetPort", port}},
      json::object{{"name", "dns-tcp"}, {"port", 53}, {"protocol", "TCP"}, {"targetPort", port}}};
  json::object labels{{"k8s-app", "kube-dns"},
                      {"kubernetes.io/cluster-service", "true"},
                      {"kubernetes.io/name", "kiso-dns"}};
  json::value svc = json::object{
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata",
       json::object{{"name", "kube-dns"}, {"namespace", "kube-system"}, {"labels", labels}}},
      {"spec", json::object{{"clusterIP", options_.service_ip}, {"ports", ports}}}};
  auto created = client->Create(services, "kube-system", svc);
  if (!created.ok()) {
    if (created.status().code() != Code::kAlreadyExists) return created.status();
    KISO_ASSIGN_OR_RETURN(auto have, client->Get(services, "kube-system", "kube-dns"));
    if (api::GetString(have, {"spec", "clusterIP"}) != options_.service_ip) {
      spdlog::warn("cluster DNS: kube-dns has cluster IP {}, not {} (the service range changed?)",
                   api::GetString(have, {"spec", "clusterIP"}), options_.service_ip);
    }
    have.as_object()["spec"].as_object()["ports"] = ports;
    KISO_RETURN_IF_ERROR(client->Update(services, "kube-system", have).status());
  }
  json::array subsets{json::object{
      {"addresses", json::array{json::object{{"ip", options_.advertise_address}}}},
      {"ports",
       json::array{json::object{{"name", "dns"}, {"port", port}, {"protocol", "UDP"}},
                   json::object{{"name", "dns-tcp"}, {"port", port}, {"protocol", "TCP"}}}}}};
  json::value ep = json::object{
      {"apiVersion", "v1"},
      {"kind", "Endpoints"},
      {"metadata",
       json::object{{"name", "kube-dns"}, {"namespace", "kube-system"}, {"labels", labels}}},
      {"subsets", subsets}};
  auto made = client->Create(endpoints, "kube-system", ep);
  if (!made.ok()) {
    if (made.status().code() != Code::kAlreadyExists) return made.status();
    KISO_ASSIGN_OR_RETURN(auto have, client->Get(endpoints, "kube-system", "kube-dns"));
    have.as_object()["subsets"] = subsets;
    KISO_RETURN_IF_ERROR(client->Update(endpoints, "kube-system", have).status());
  }
  return Status::Ok();
}

}  // namespace kiso::dns
