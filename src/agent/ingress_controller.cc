#include "agent/ingress_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>

#include "api/ingress_class.h"
#include "api/object.h"
#include "api/resources.h"
#include "common/base64.h"

namespace kiso::agent {

namespace json = boost::json;
namespace ingress = network::ingress;

IngressController::IngressController(client::Client* client, ingress::ProxyOptions options)
    : client_(client), options_(std::move(options)) {}

IngressController::~IngressController() { Stop(); }

Status IngressController::Start() {
  KISO_ASSIGN_OR_RETURN(proxy_, ingress::IngressProxy::Start(options_));
  auto any = [this](const json::value*, const json::value&, bool) { Dirty(); };
  auto if_named = [this](const json::value*, const json::value& obj, bool) {
    bool named;
    {
      std::lock_guard lock(mu_);
      named = referenced_.contains(api::KeyOf(obj));
    }
    if (named) Dirty();
  };
  ingresses_ = std::make_unique<client::Informer>(
      client_, api::FindResource("networking.k8s.io", "v1", "ingresses"), any);
  classes_ = std::make_unique<client::Informer>(
      client_, api::FindResource("networking.k8s.io", "v1", "ingressclasses"), any);
  services_ = std::make_unique<client::Informer>(client_, api::FindResource("", "v1", "services"),
                                                 if_named);
  slices_ = std::make_unique<client::Informer>(
      client_, api::FindResource("discovery.k8s.io", "v1", "endpointslices"),
      [this](const json::value* old, const json::value& slice, bool deleted) {
        bool named = false;
        for (const auto& key : slice_index_.Observe(old, slice, deleted)) {
          std::lock_guard lock(mu_);
          named = named || referenced_.contains(key);
        }
        if (named) Dirty();
      });
  // Only TLS Secrets: an Ingress's certificates are of that type. A node on
  // another machine may not read them unless an operator allowed it.
  const api::ResourceType& secrets = *api::FindResource("", "v1", "secrets");
  client::ListOptions probe;
  probe.field_selector = "type=kubernetes.io/tls";
  probe.limit = 1;
  if (auto listed = client_->List(secrets, "", probe);
      !listed.ok() && listed.status().code() == Code::kPermissionDenied) {
    spdlog::warn(
        "ingress: this node may not read Secrets, so HTTPS serves the default certificate only "
        "(bind the ClusterRole kiso:ingress-tls-reader to the node to serve Ingresses' own)");
  } else {
    secrets_ = std::make_unique<client::Informer>(client_, &secrets, any);
    secrets_->SetFieldSelector(probe.field_selector);
  }
  for (auto* i : Informers()) i->Start();
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void IngressController::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto* i : Informers()) i->Stop();
  if (proxy_) proxy_->Stop();
}

std::vector<client::Informer*> IngressController::Informers() const {
  std::vector<client::Informer*> out;
  for (auto* i : {ingresses_.get(), classes_.get(), services_.get(), slices_.get(), secrets_.get()})
    if (i) out.push_back(i);
  return out;
}

void IngressController::Dirty() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

void IngressController::Run() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (auto* i : Informers()) i->WaitForSync(deadline);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return dirty_ || stop_; });
      if (stop_) return;
      dirty_ = false;
    }
    std::set<std::string> named;
    auto routes = Build(
        ingresses_->List(), classes_->List(),
        [&](const std::string& ns, const std::string& name) { return services_->Get(ns, name); },
        [&](const std::string& key) {
          auto [ns, name] = api::SplitKey(key);
          std::vector<json::value> out;
          for (const auto& n : slice_index_.Of(key)) {
            if (auto s = slices_->Get(ns, n)) out.push_back(std::move(*s));
          }
          return out;
        },
        [&](const std::string& ns, const std::string& name) -> std::optional<json::value> {
          return secrets_ ? secrets_->Get(ns, name) : std::nullopt;
        },
        &named);
    {
      std::lock_guard lock(mu_);
      referenced_ = std::move(named);
    }
    proxy_->SetRoutes(std::move(routes));
  }
}

std::shared_ptr<ingress::RouteTable> IngressController::Build(
    const std::vector<json::value>& ingresses, const std::vector<json::value>& classes,
    const std::function<std::optional<json::value>(const std::string&, const std::string&)>&
        service,
    const std::function<std::vector<json::value>(const std::string&)>& slices,
    const std::function<std::optional<json::value>(const std::string&, const std::string&)>& secret,
    std::set<std::string>* services) {
  // Oldest first: on conflicting rules the oldest Ingress wins.
  std::vector<const json::value*> mine;
  for (const auto& ing : ingresses) {
    if (api::IngressBelongsTo(ing, classes, api::kKisoIngressController)) mine.push_back(&ing);
  }
  std::sort(mine.begin(), mine.end(), [](const json::value* a, const json::value* b) {
    auto ta = api::GetString(*a, {"metadata", "creationTimestamp"});
    auto tb = api::GetString(*b, {"metadata", "creationTimestamp"});
    return ta != tb ? ta < tb : api::KeyOf(*a) < api::KeyOf(*b);
  });

  std::map<std::string, std::shared_ptr<ingress::Backend>> backends;
  // A Service port's ready endpoints ("ip:port"), the port by number or name.
  auto backend_of = [&](const std::string& ns,
                        const json::value& ref) -> std::shared_ptr<ingress::Backend> {
    std::string name(api::GetString(ref, {"name"}));
    const json::value* number = api::Find(ref, {"port", "number"});
    std::string_view port_name = api::GetString(ref, {"port", "name"});
    if (name.empty()) return nullptr;
    std::string port_text =
        number && number->is_int64() ? std::to_string(number->get_int64()) : std::string(port_name);
    std::string id = fmt::format("{}/{}:{}", ns, name, port_text);
    if (auto it = backends.find(id); it != backends.end()) return it->second;
    auto b = std::make_shared<ingress::Backend>();
    b->service = id;
    backends[id] = b;
    services->insert(ns + "/" + name);
    auto svc = service(ns, name);
    if (!svc || api::GetString(*svc, {"spec", "type"}) == "ExternalName") return b;
    const json::value* port = nullptr;
    for (const auto& p : api::GetArray(*svc, {"spec", "ports"})) {
      const json::value* n = api::Find(p, {"port"});
      if ((number && n && *n == *number) ||
          (!number && !port_name.empty() && api::GetString(p, {"name"}) == port_name)) {
        port = &p;
        break;
      }
    }
    if (!port || (!api::GetString(*port, {"protocol"}).empty() &&
                  api::GetString(*port, {"protocol"}) != "TCP"))
      return b;
    std::string_view wanted = api::GetString(*port, {"name"});
    for (const auto& slice : slices(fmt::format("{}/{}", ns, name))) {
      const json::value* target = nullptr;
      for (const auto& sp : api::GetArray(slice, {"ports"})) {
        if (api::GetString(sp, {"name"}) == wanted) target = api::Find(sp, {"port"});
      }
      if (!target || !target->is_int64()) continue;
      for (const auto& e : client::EndpointsOf(slice)) {
        if (e.ready) b->targets.push_back(fmt::format("{}:{}", e.ip, target->get_int64()));
      }
    }
    std::sort(b->targets.begin(), b->targets.end());
    return b;
  };

  auto table = std::make_shared<ingress::RouteTable>();
  for (const json::value* ing : mine) {
    std::string ns(api::GetString(*ing, {"metadata", "namespace"}));
    std::string source = api::KeyOf(*ing);
    if (const auto* d = api::Find(*ing, {"spec", "defaultBackend", "service"})) {
      if (auto b = backend_of(ns, *d)) table->SetDefault(b);
    }
    for (const auto& rule : api::GetArray(*ing, {"spec", "rules"})) {
      std::string host(api::GetString(rule, {"host"}));
      for (const auto& p : api::GetArray(rule, {"http", "paths"})) {
        const json::value* ref = api::Find(p, {"backend", "service"});
        if (!ref) continue;  // A resource backend: not kiso's to serve.
        auto b = backend_of(ns, *ref);
        if (!b) continue;
        std::string path(api::GetString(p, {"path"}));
        ingress::Rule r;
        r.host = host;
        r.path = path.empty() ? "/" : path;
        r.type = api::GetString(p, {"pathType"}) == "Exact" ? ingress::PathType::kExact
                                                            : ingress::PathType::kPrefix;
        r.backend = std::move(b);
        table->Add(std::move(r));
      }
    }
    for (const auto& tls : api::GetArray(*ing, {"spec", "tls"})) {
      std::string secret_name(api::GetString(tls, {"secretName"}));
      if (secret_name.empty()) continue;
      auto s = secret(ns, secret_name);
      if (!s) {
        spdlog::warn("ingress {}: TLS secret {}/{} not found", source, ns, secret_name);
        continue;
      }
      auto crt = Base64Decode(api::GetString(*s, {"data", "tls.crt"}));
      auto key = Base64Decode(api::GetString(*s, {"data", "tls.key"}));
      if (!crt || !key) continue;
      ingress::Certificate c;
      for (const auto& h : api::GetArray(tls, {"hosts"}))
        if (h.is_string()) c.hosts.emplace_back(h.get_string());
      if (c.hosts.empty()) {  // Upstream: the hosts of the Ingress's rules.
        for (const auto& rule : api::GetArray(*ing, {"spec", "rules"}))
          if (auto h = api::GetString(rule, {"host"}); !h.empty()) c.hosts.emplace_back(h);
      }
      c.secret = fmt::format("{}/{}", ns, secret_name);
      c.cert_pem = std::move(*crt);
      c.key_pem = std::move(*key);
      table->AddCertificate(std::move(c));
    }
  }
  table->Seal();
  return table;
}

}  // namespace kiso::agent
