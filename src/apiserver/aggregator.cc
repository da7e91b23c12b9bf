#include "apiserver/aggregator.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "api/object.h"
#include "apiserver/service_resolver.h"
#include "apiserver/verbs/handlers.h"
#include "client/https_transport.h"
#include "common/base64.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

constexpr std::chrono::seconds kBackendTimeout{10};
// What an aggregated server's answer may hold in kiso's memory (watches stream).
constexpr size_t kMaxBackendAnswer = size_t{64} << 20;

const api::ResourceType& ApiServices() {
  return *api::FindResource("apiregistration.k8s.io", "v1", "apiservices");
}

bool ServedHere(std::string_view group, std::string_view version) {
  const auto all = api::AllResources();
  return std::any_of(all.begin(), all.end(), [&](const api::ResourceType* t) {
    return t->group == group && t->version == version;
  });
}

// /apis/<group>/<version>[/rest] split; nullopt for other paths.
struct ApiPath {
  std::string group, version;
  std::vector<std::string> rest;
};
std::optional<ApiPath> SplitApiPath(std::string_view path) {
  if (!path.starts_with("/apis/")) return std::nullopt;
  ApiPath out;
  std::vector<std::string> segs = SplitPath(path.substr(6));
  if (segs.size() < 2) return std::nullopt;
  out.group = segs[0];
  out.version = segs[1];
  out.rest.assign(segs.begin() + 2, segs.end());
  return out;
}

// Header fields of the client's that are the client's credentials or the
// front proxy's to set: never forwarded.
bool Withheld(std::string_view name) {
  return name == "authorization" || name == "host" || name == "connection" ||
         name == "content-length" || name == "transfer-encoding" || name == "upgrade" ||
         name.starts_with("impersonate-") || name.starts_with("x-remote-");
}

// X-Remote-Extra-<key>: the key's bytes outside [A-Za-z0-9-] percent-encoded
// (as kube-apiserver escapes them), so any key survives as a header name.
std::string ExtraHeader(std::string_view key) {
  std::string out = "X-Remote-Extra-";
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

Response Unavailable(std::string message) {
  return ErrorResponse(api::ServiceUnavailable(std::move(message)));
}

}  // namespace

Aggregator::Aggregator(const Context* ctx, Credentials credentials)
    : ctx_(ctx), credentials_(std::move(credentials)) {}
Aggregator::~Aggregator() = default;

std::optional<std::pair<std::string, std::string>> Aggregator::Claims(std::string_view path) const {
  auto p = SplitApiPath(path);
  if (!p || ServedHere(p->group, p->version)) return std::nullopt;
  auto service = ReadFromCache(*ctx_, ApiServices(), "", p->version + "." + p->group);
  if (!service) return std::nullopt;
  const auto* ref = api::Find(*service, {"spec", "service"});
  if (!ref || !ref->is_object()) return std::nullopt;
  return std::make_pair(p->group, p->version);
}

Attributes Aggregator::AttributesOf(const Request& req, const UserInfo* user) {
  auto p = SplitApiPath(req.path);
  std::vector<std::string> rest = p ? p->rest : std::vector<std::string>{};
  // /apis/<group>/<version> itself: discovery, a non-resource path.
  if (!p || rest.empty()) return NonResourceAttributes(user, req.path, req.method);
  Attributes a;
  a.user = user;
  a.api_group = p->group;
  a.api_version = p->version;
  if (rest[0] == "namespaces" && rest.size() >= 2) {
    a.ns = rest[1];
    if (rest.size() == 2) {
      rest = {"namespaces", a.ns};  // The namespace object itself.
    } else {
      rest.erase(rest.begin(), rest.begin() + 2);
    }
  }
  a.resource = rest[0];
  if (rest.size() >= 2) a.name = rest[1];
  if (rest.size() >= 3) a.subresource = rest[2];
  a.verb = RequestVerb(req, !a.name.empty());
  return a;
}

std::shared_ptr<client::HttpsTransport> Aggregator::TransportFor(const std::string& address,
                                                                 int port,
                                                                 const std::string& server_name,
                                                                 const std::string& ca_pem,
                                                                 bool insecure) {
  std::string key = fmt::format("{}:{}|{}|{}|{}", address, port, server_name, insecure,
                                std::hash<std::string>{}(ca_pem));
  std::lock_guard lock(mu_);
  if (auto it = transports_.find(key); it != transports_.end()) return it->second;
  client::KubeConfig config;
  config.host = address;
  config.port = port;
  config.server =
      fmt::format("https://{}:{}",
                  address.find(':') != std::string::npos ? "[" + address + "]" : address, port);
  config.ca_pem = ca_pem;
  config.insecure = insecure;
  config.client_cert_pem = credentials_.front_proxy_cert_pem;
  config.client_key_pem = credentials_.front_proxy_key_pem;
  client::TransportOptions options;
  options.server_name = server_name;
  options.timeout = kBackendTimeout;
  options.max_body_bytes = kMaxBackendAnswer;
  auto made = client::HttpsTransport::Create(config, options);
  if (!made.ok()) return nullptr;
  if (transports_.size() >= 64) transports_.clear();  // Endpoints come and go: start afresh.
  transports_.emplace(key, *made);
  return *made;
}

Response Aggregator::Proxy(const Request& req, const std::string& group,
                           const std::string& version) {
  const std::string name = version + "." + group;
  auto registration = ReadFromCache(*ctx_, ApiServices(), "", name);
  if (!registration) return ErrorResponse(api::NotFoundPath());
  const json::object& apiservice = *registration;
  std::string ns(api::GetString(apiservice, {"spec", "service", "namespace"}));
  std::string svc_name(api::GetString(apiservice, {"spec", "service", "name"}));
  int64_t svc_port = api::GetInt(apiservice, {"spec", "service", "port"}, 443);

  auto endpoint = ResolveServiceEndpoint(*ctx_, ns, svc_name, svc_port);
  if (!endpoint.ok())
    return Unavailable(fmt::format("APIService {}: {}", name, endpoint.status().message()));
  const auto& [address, port] = *endpoint;

  std::string ca_pem;
  if (auto bundle = api::GetString(apiservice, {"spec", "caBundle"}); !bundle.empty()) {
    auto decoded = Base64Decode(bundle);
    if (!decoded) return Unavailable(fmt::format("APIService {}: caBundle is not base64", name));
    ca_pem = std::move(*decoded);
  }
  bool insecure = false;
  if (const auto* v = api::Find(apiservice, {"spec", "insecureSkipTLSVerify"}); v && v->is_bool())
    insecure = v->get_bool();
  auto transport = TransportFor(address, static_cast<int>(port),
                                fmt::format("{}.{}.svc", svc_name, ns), ca_pem, insecure);
  if (!transport)
    return Unavailable(fmt::format("APIService {}: its caBundle holds no certificate", name));

  Request out;
  out.method = req.method;
  out.path = req.path;
  out.query = req.query;
  for (const auto& [k, v] : req.headers) {
    if (!Withheld(k)) out.headers.emplace(k, v);
  }
  out.body = req.object ? json::serialize(*req.object) : req.body;
  if (req.object) out.headers["content-type"] = "application/json";
  // Who asks: the authenticated user; the server itself for its own requests
  // (kube-apiserver's loopback identity).
  client::HeaderLines who;
  if (req.user) {
    who.emplace_back("X-Remote-User", req.user->name);
    for (const auto& g : req.user->groups) who.emplace_back("X-Remote-Group", g);
    for (const auto& [key, values] : req.user->extra) {
      for (const auto& v : values) who.emplace_back(ExtraHeader(key), v);
    }
  } else {
    who.emplace_back("X-Remote-User", "system:apiserver");
    who.emplace_back("X-Remote-Group", "system:masters");
    who.emplace_back("X-Remote-Group", "system:authenticated");
  }
  Response res = transport->RoundTrip(out, who);
  // A version's discovery document, kept for /apis discovery.
  if (req.method == "GET" && res.status == 200 && SplitApiPath(req.path)->rest.empty()) {
    if (auto doc = api::ParseJson(res.body); doc.ok() && doc->is_object()) {
      std::lock_guard lock(mu_);
      resources_[group + "/" + version] =
          std::make_shared<const json::object>(std::move(doc->get_object()));
    }
  }
  return res;
}

std::vector<AggregatedGroupVersion> Aggregator::Versions() const {
  std::vector<AggregatedGroupVersion> out;
  for (const auto& s : ListFromCache(*ctx_, ApiServices(), "")) {
    const auto* ref = api::Find(s, {"spec", "service"});
    if (!ref || !ref->is_object()) continue;
    AggregatedGroupVersion v;
    v.group = std::string(api::GetString(s, {"spec", "group"}));
    v.version = std::string(api::GetString(s, {"spec", "version"}));
    if (v.group.empty() || v.version.empty() || ServedHere(v.group, v.version)) continue;
    v.group_priority = api::GetInt(s, {"spec", "groupPriorityMinimum"}, 0);
    v.version_priority = api::GetInt(s, {"spec", "versionPriority"}, 0);
    {
      std::lock_guard lock(mu_);
      if (auto it = resources_.find(v.group + "/" + v.version); it != resources_.end())
        v.resources = it->second;
    }
    out.push_back(std::move(v));
  }
  // A group ranks by the highest groupPriorityMinimum of its versions.
  std::map<std::string, int64_t, std::less<>> rank;
  for (const auto& v : out) {
    auto [it, fresh] = rank.try_emplace(v.group, v.group_priority);
    if (!fresh) it->second = std::max(it->second, v.group_priority);
  }
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    if (rank[a.group] != rank[b.group]) return rank[a.group] > rank[b.group];
    if (a.group != b.group) return a.group < b.group;
    if (a.version_priority != b.version_priority) return a.version_priority > b.version_priority;
    return api::VersionPreferred(a.version, b.version);
  });
  return out;
}

}  // namespace kiso::apiserver
