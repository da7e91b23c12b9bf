#include "apiserver/api_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "api/object.h"
#include "apiserver/admission/admission.h"
#include "apiserver/aggregator.h"
#include "apiserver/authn/authenticator.h"
#include "apiserver/authn/credentials.h"
#include "apiserver/authn/tokens.h"
#include "apiserver/authz/authorizer.h"
#include "apiserver/authz/bootstrap_policy.h"
#include "apiserver/authz/node_authorizer.h"
#include "apiserver/authz/rbac.h"
#include "apiserver/http/http_server.h"
#include "apiserver/http/node_streams.h"
#include "apiserver/instrumented_store.h"
#include "apiserver/metrics.h"
#include "apiserver/schema/custom_resources.h"
#include "apiserver/verbs/handlers.h"
#include "common/host_addresses.h"
#include "common/recover.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

// Parses a resource URL; nullopt when the path names no resource kiso serves.
std::optional<Target> ParseTarget(const Request& req) {
  auto segs = SplitPath(req.path);
  std::string group, version;
  size_t i = 0;
  if (segs.size() >= 2 && segs[0] == "api") {
    version = segs[1];
    i = 2;
  } else if (segs.size() >= 3 && segs[0] == "apis") {
    group = segs[1];
    version = segs[2];
    i = 3;
  } else {
    return std::nullopt;
  }
  std::vector<std::string> rest(segs.begin() + static_cast<std::ptrdiff_t>(i), segs.end());
  if (rest.empty()) return std::nullopt;
  Target t;
  if (rest[0] == "namespaces" && rest.size() >= 3 &&
      !(rest.size() == 3 && (rest[2] == "status" || rest[2] == "finalize"))) {
    t.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  // A node's proxy takes the rest of the path: /api/v1/nodes/NAME/proxy/stats/summary.
  bool node_proxy = group.empty() && rest.size() >= 3 && rest[0] == "nodes" && rest[2] == "proxy";
  if (node_proxy) rest.resize(3);
  if (rest.empty() || rest.size() > 3) return std::nullopt;
  t.type = api::FindResource(group, version, rest[0]);
  if (!t.type) return std::nullopt;
  if (!t.ns.empty() && !t.type->namespaced) return std::nullopt;
  if (rest.size() >= 2) t.name = rest[1];
  if (rest.size() == 3) {
    t.subresource = rest[2];
    if (!t.type->FindSubresource(t.subresource)) return std::nullopt;
  }
  t.verb = RequestVerb(req, !t.name.empty());
  return t;
}

// Served to anyone: kube-apiserver's health checks and version (K3s runs
// with anonymous authentication off, so nothing else is).
bool Public(std::string_view path) {
  return path == "/healthz" || path == "/livez" || path == "/readyz" || path == "/version" ||
         path == "/version/";
}

// The verb a request is authorized as. Streams are "create" whatever the
// method (kube-apiserver checks create on pods/exec for WebSocket GETs too).
std::string VerbOf(const Target& t) {
  if (t.subresource == "exec" || t.subresource == "attach" || t.subresource == "portforward")
    return "create";
  return t.verb;
}

// What a request asks to do, for the authorizers.
Attributes AttributesOf(const Request& req, const std::optional<Target>& target) {
  if (!target) return NonResourceAttributes(req.user.get(), req.path, req.method);
  Attributes a;
  a.user = req.user.get();
  a.verb = VerbOf(*target);
  a.api_group = target->type->group;
  a.api_version = target->type->version;
  a.resource = target->type->plural;
  a.subresource = target->subresource;
  a.ns = target->ns;
  a.name = target->name;
  // A list or watch of one object by name is authorized as that object (as
  // kube-apiserver's request info does, for the Node authorizer).
  if (a.name.empty() && (a.verb == "list" || a.verb == "watch")) {
    if (auto fs = req.Query("fieldSelector");
        fs && fs->starts_with("metadata.name=") && fs->find(',') == std::string_view::npos) {
      a.name = std::string(fs->substr(14));
    }
  }
  return a;
}

Response Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

}  // namespace

struct ApiServer::Impl {
  ApiServerOptions options;
  std::string advertise;  // Where pods reach the server.
  Credentials creds;
  Metrics metrics;
  std::unique_ptr<InstrumentedStore> store;
  std::unique_ptr<WatchCache> cache;
  std::unique_ptr<CustomResourcePublisher> custom_resources;
  std::unique_ptr<TokenSigner> signer;
  std::unique_ptr<Authenticator> authn;
  std::unique_ptr<Rbac> rbac;
  std::unique_ptr<NodeAuthorizer> node_authz;
  std::unique_ptr<AuthorizerChain> authz;
  std::unique_ptr<Admission> admission;
  std::unique_ptr<Aggregator> aggregator;
  NodeStreams streams;
  Context ctx;
  std::unique_ptr<HttpsServer> http;

  std::mutex mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread compactor;

  // An HTTPS request: authenticated here (401 without credentials kiso
  // accepts), then served as any request is.
  Response HandleHttp(Request& req) {
    if (!Public(req.path)) {
      auto user = authn->Authenticate(req);
      if (!user) return ErrorResponse(api::Unauthorized());
      if (!req.Header("impersonate-user").empty()) {
        if (auto denied = Impersonate(req, *user)) return *denied;
      }
      req.user = std::make_shared<const UserInfo>(std::move(*user));
    }
    return Handle(req, /*trusted=*/false);
  }

  // A request answered at once from memory (HttpsServerOptions::quick): a GET
  // of one stored object by name with no parameters, while the store is on
  // this machine. Authentication and RBAC read the watch cache (a denial
  // waits for the RBAC index only while it is behind the store, which it
  // follows within milliseconds); SQLite's readers do not wait for its
  // writer. Not: lists, watches, subresources, tables, aggregated or metrics
  // APIs (another server answers those), nor any read of an etcd store (a
  // round trip over the network).
  bool Quick(const Request& req) const {
    if (req.method != "GET" || !req.query.empty() || store->Backend() != "sqlite") return false;
    auto t = ParseTarget(req);
    return t && t->verb == "get" && t->subresource.empty() && t->type->stored &&
           t->type->group != "metrics.k8s.io" && !WantsTable(req);
  }

  // Impersonate-User / Impersonate-Group / Impersonate-Uid (kubectl --as,
  // --as-group, --as-uid): the request proceeds as that user when its
  // authenticated user may `impersonate` each of them; 403 otherwise.
  std::optional<Response> Impersonate(const Request& req, UserInfo& user) {
    std::string name(req.Header("impersonate-user"));
    Attributes a;
    a.user = &user;
    a.verb = "impersonate";
    UserInfo as;
    as.name = name;
    if (name.starts_with(kServiceAccountPrefix)) {
      std::string_view rest = std::string_view(name).substr(kServiceAccountPrefix.size());
      size_t colon = rest.find(':');
      a.resource = "serviceaccounts";
      a.ns = std::string(rest.substr(0, colon));
      a.name = colon == std::string_view::npos ? "" : std::string(rest.substr(colon + 1));
      as.groups = {"system:serviceaccounts", "system:serviceaccounts:" + a.ns};
    } else {
      a.resource = "users";
      a.name = name;
    }
    if (auto denied = Authorize(a)) return denied;
    std::string_view groups = req.Header("impersonate-group");
    while (!groups.empty()) {
      size_t comma = groups.find(',');
      std::string_view g = groups.substr(0, comma);
      while (!g.empty() && g.front() == ' ') g.remove_prefix(1);
      groups = comma == std::string_view::npos ? "" : groups.substr(comma + 1);
      if (g.empty()) continue;
      Attributes ga = a;
      ga.resource = "groups";
      ga.ns.clear();
      ga.name = std::string(g);
      if (auto denied = Authorize(ga)) return denied;
      as.groups.emplace_back(g);
    }
    if (auto uid = req.Header("impersonate-uid"); !uid.empty()) {
      Attributes ua = a;
      ua.api_group = "authentication.k8s.io";
      ua.resource = "uids";
      ua.ns.clear();
      ua.name = std::string(uid);
      if (auto denied = Authorize(ua)) return denied;
      as.uid = std::string(uid);
    }
    if (name != "system:anonymous" && !as.InGroup(kAuthenticatedGroup))
      as.groups.emplace_back(kAuthenticatedGroup);
    user = std::move(as);
    return std::nullopt;
  }

  // 403 unless the authorizers allow `a`. A denial waits for the RBAC index
  // to reach the store's revision and asks again, so that a binding just
  // written through this server applies to the next request.
  std::optional<Response> Authorize(const Attributes& a) {
    AuthorizationResult r = authz->Authorize(a);
    if (r.decision == Decision::kAllow) return std::nullopt;
    if (auto rev = store->CurrentRevision(); rev.ok() && *rev > cache->revision()) {
      rbac->CatchUp(*rev, std::chrono::seconds(2));
      r = authz->Authorize(a);
      if (r.decision == Decision::kAllow) return std::nullopt;
    }
    if (!a.resource_request) return ErrorResponse(api::Forbidden(ForbiddenMessage(a, r.reason)));
    return ErrorResponse(
        api::Forbidden(ForbiddenMessage(a, r.reason), a.api_group, a.resource, a.name));
  }

  Response Route(const Request& req, const std::optional<Target>& target, bool trusted) {
    const std::string& path = req.path;
    if (path == "/healthz" || path == "/livez" || path == "/readyz") {
      auto rev = store->CurrentRevision();
      if (!rev.ok()) return Text(503, "store: " + rev.status().message() + "\n");
      return Text(200, "ok");
    }
    if (path == "/version" || path == "/version/") {
      return JsonResponse(200,
                          json::serialize(json::object{{"major", "1"},
                                                       {"minor", "32"},
                                                       {"gitVersion", "v1.32.0+kiso-" KISO_VERSION},
                                                       {"gitCommit", "kiso"},
                                                       {"gitTreeState", "clean"},
                                                       {"buildDate", "2026-01-01T00:00:00Z"},
                                                       {"goVersion", "none (C++20)"},
                                                       {"compiler", "gcc"},
                                                       {"platform", "linux/amd64"}}));
    }
    if (!trusted) {
      if (!req.user) return ErrorResponse(api::Unauthorized());
      if (auto denied = Authorize(AttributesOf(req, target))) return *denied;
    }
    if (path == "/metrics") return Text(200, metrics.Render());
    if (path.starts_with(kTunnelPrefix)) return streams.AcceptTunnel(req);
    if (auto r = HandleOidc(ctx, req)) return *r;
    if (auto r = HandleDiscovery(ctx, req)) return *r;
    if (auto r = HandleOpenApi(req)) return *r;
    if (!target) return ErrorResponse(api::NotFoundPath());
    return Dispatch(*target, req);
  }

  // A request for an aggregated group version: authorized here as any API
  // request is, then proxied to the server its APIService names.
  Response RouteAggregated(const Request& req, const std::pair<std::string, std::string>& gv,
                           bool trusted) {
    if (!trusted) {
      if (!req.user) return ErrorResponse(api::Unauthorized());
      if (auto denied = Authorize(Aggregator::AttributesOf(req, req.user.get()))) return *denied;
    }
    return aggregator->Proxy(req, gv.first, gv.second);
  }

  Response Dispatch(const Target& t, const Request& req) {
    const std::string& sub = t.subresource;
    const std::string& verb = t.verb;
    // Namespaced objects are named with their namespace; only list and watch span all.
    if (t.type->namespaced && t.ns.empty() && verb != "list" && verb != "watch") {
      return ErrorResponse(api::NotFoundPath());
    }
    if (sub.empty() && !t.type->Allows(verb)) {
      return ErrorResponse(api::MethodNotAllowed());
    }
    if (t.type->group == "metrics.k8s.io") return HandleMetrics(ctx, t, req, streams);
    if (!t.type->stored) return HandleReview(ctx, t, req);
    if (!t.type->storage_version.empty() && &t.type->Storage() != t.type) {
      return ServeConverted(ctx, t, req, [this](const Target& stored, const Request& r) {
        return Dispatch(stored, r);
      });
    }
    if (sub == "token" && t.type->plural == "serviceaccounts")
      return HandleTokenRequest(ctx, t, req);
    if (sub == "log" || sub == "exec" || sub == "attach" || sub == "portforward" ||
        (sub == "proxy" && t.type->plural == "nodes")) {
      return streams.Handle(ctx, t, req);
    }
    if (sub == "scale") {
      if (verb == "get" || verb == "update" || verb == "patch") return HandleScale(ctx, t, req);
      return ErrorResponse(api::MethodNotAllowed());
    }
    if (sub == "eviction") {
      if (verb == "create") return HandleEviction(ctx, t, req);
      return ErrorResponse(api::MethodNotAllowed());
    }
    if (sub == "binding") {
      if (verb == "create") return HandleBinding(ctx, t, req);
      return ErrorResponse(api::MethodNotAllowed());
    }
    if (sub == "status" || sub == "finalize") {
      if (verb == "get") return HandleGet(ctx, t, req);
      if (verb == "update") return HandleUpdate(ctx, t, req);
      if (verb == "patch") return HandlePatch(ctx, t, req);
      return ErrorResponse(api::MethodNotAllowed());
    }
    if (verb == "get") return HandleGet(ctx, t, req);
    if (verb == "list") return HandleList(ctx, t, req);
    if (verb == "watch") return HandleWatch(ctx, t, req);
    if (verb == "create") {
      if (!t.name.empty()) return ErrorResponse(api::MethodNotAllowed());
      return HandleCreate(ctx, t, req);
    }
    if (verb == "update") return HandleUpdate(ctx, t, req);
    if (verb == "patch") return HandlePatch(ctx, t, req);
    if (verb == "delete") return HandleDelete(ctx, t, req);
    if (verb == "deletecollection") return HandleDeleteCollection(ctx, t, req);
    return ErrorResponse(api::MethodNotAllowed());
  }

  Response Handle(const Request& req, bool trusted) {
    auto start = std::chrono::steady_clock::now();
    auto target = ParseTarget(req);
    std::optional<std::pair<std::string, std::string>> aggregated;
    if (!target && req.path.starts_with("/apis/")) {
      // A version an APIService registers to another server, or a custom
      // kind whose definition was established a moment ago.
      aggregated = aggregator->Claims(req.path);
      if (!aggregated) {
        custom_resources->Refresh();
        target = ParseTarget(req);
      }
    }
    Response res;
    try {
      res = aggregated ? RouteAggregated(req, *aggregated, trusted) : Route(req, target, trusted);
    } catch (...) {
      // A bug a request or a stored object found: that request fails, the server goes on.
      ReportRecovered(fmt::format("{} {} {}", req.remote, req.method, req.path),
                      CurrentExceptionMessage());
      res = ErrorResponse(api::InternalError(std::string(CurrentExceptionMessage())));
    }
    for (const auto& w : req.warnings) {
      std::string quoted = "299 - \"";
      for (char c : w) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
      }
      res.headers.emplace_back("Warning", quoted + '"');
    }
    std::string verb = target ? target->verb : req.method;
    std::string resource = target ? target->type->plural : "";
    if (target && !target->subresource.empty()) resource += "/" + target->subresource;
    // Streams are counted when they start; their duration is the watch's, not the request's.
    metrics.ObserveRequest(verb, resource, res.status, std::chrono::steady_clock::now() - start);
    spdlog::debug("{} {} {} → {}", req.remote, req.method, req.path, res.status);
    return res;
  }

  // A request of the server's own (seeding what every cluster has).
  static Request OwnRequest(const char* method) {
    Request req;
    req.method = method;
    req.headers.emplace("user-agent", "kiso-apiserver/" KISO_VERSION);
    return req;
  }

  // Creates `obj` unless an object of its name exists. With `created`, tells
  // which happened.
  Status CreateIfMissing(const api::ResourceType* type, json::object obj, bool* created = nullptr) {
    std::string name(api::GetString(obj, {"metadata", "name"}));
    Target t{type, std::string(api::GetString(obj, {"metadata", "namespace"})), name, "", "create"};
    Request req = OwnRequest("POST");
    auto res = CreateObject(ctx, t, req, std::move(obj));
    if (created) *created = res.ok();
    if (res.ok() || res.error().code == 409) return Status::Ok();
    return MakeStatus(Code::kInternal, "create {} {}: {}", type->plural, name, res.error().message);
  }

  // The namespaces every cluster has (kube-apiserver's system namespaces controller).
  Status SeedNamespaces() {
    const api::ResourceType* ns_type = api::FindResource("", "v1", "namespaces");
    for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      KISO_RETURN_IF_ERROR(
          CreateIfMissing(ns_type, json::object{{"apiVersion", "v1"},
                                                {"kind", "Namespace"},
                                                {"metadata", json::object{{"name", name}}}}));
    }
    return Status::Ok();
  }

  // The `kubernetes` Service in default, made current at each start (it keeps
  // the first address of the service range), and its Endpoints and
  // EndpointSlice when missing: this server. Who serves it is kept current by
  // every server's endpoint reconciler (controller/apiserver_endpoints.h),
  // which a seed at start would undo for a moment.
  Status SeedKubernetesService(const std::string& address, uint16_t port) {
    // Creates `obj`, or brings the part `owned` picks out of the stored one back to `obj`'s.
    using Part = json::value& (*)(json::object&);
    auto keep = [&](const char* group, const char* plural, json::object obj, Part owned) -> Status {
      const api::ResourceType* type = api::FindResource(group, "v1", plural);
      bool created = false;
      json::value want = owned ? owned(obj) : json::value();
      KISO_RETURN_IF_ERROR(CreateIfMissing(type, std::move(obj), &created));
      if (created || owned == nullptr) return Status::Ok();
      Target t{type, "default", "kubernetes", "", "update"};
      Request req = OwnRequest("PUT");
      auto updated = GuaranteedUpdate(ctx, t, req, [&](json::object& current) -> api::ApiStatus {
        if (json::value& have = owned(current); have != want) have = want;
        return std::nullopt;
      });
      if (!updated.ok()) {
        return MakeStatus(Code::kInternal, "update {} kubernetes: {}", plural,
                          updated.error().message);
      }
      return Status::Ok();
    };
    json::object meta{
        {"name", "kubernetes"},
        {"namespace", "default"},
        {"labels", json::object{{"component", "apiserver"}, {"provider", "kubernetes"}}}};
    KISO_RETURN_IF_ERROR(keep(
        "", "services",
        json::object{
            {"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", meta},
            {"spec", json::object{{"type", "ClusterIP"},
                                  {"clusterIP", ctx.service_cidr.Address(1)},
                                  {"sessionAffinity", "None"},
                                  {"ports", json::array{json::object{{"name", "https"},
                                                                     {"port", 443},
                                                                     {"protocol", "TCP"},
                                                                     {"targetPort", port}}}}}}},
        [](json::object& o) -> json::value& { return api::Child(o, "spec")["ports"]; }));
    json::array subsets;
    if (!address.empty()) {
      subsets.push_back(json::object{
          {"addresses", json::array{json::object{{"ip", address}}}},
          {"ports",
           json::array{json::object{{"name", "https"}, {"port", port}, {"protocol", "TCP"}}}}});
    }
    meta["labels"] = json::object{{"endpointslice.kubernetes.io/skip-mirror", "true"}};
    KISO_RETURN_IF_ERROR(keep("", "endpoints",
                              json::object{{"apiVersion", "v1"},
                                           {"kind", "Endpoints"},
                                           {"metadata", meta},
                                           {"subsets", std::move(subsets)}},
                              nullptr));
    // Its EndpointSlice, which the server writes itself (as the Endpoints say not to mirror).
    json::array endpoints;
    if (!address.empty()) {
      endpoints.push_back(
          json::object{{"addresses", json::array{json::string(address)}},
                       {"conditions",
                        json::object{{"ready", true}, {"serving", true}, {"terminating", false}}}});
    }
    meta["labels"] = json::object{{"kubernetes.io/service-name", "kubernetes"}};
    return keep(
        "discovery.k8s.io", "endpointslices",
        json::object{{"apiVersion", "discovery.k8s.io/v1"},
                     {"kind", "EndpointSlice"},
                     {"metadata", std::move(meta)},
                     {"addressType", "IPv4"},
                     {"endpoints", std::move(endpoints)},
                     {"ports", json::array{json::object{
                                   {"name", "https"}, {"port", port}, {"protocol", "TCP"}}}}},
        nullptr);
  }

  // What aggregated API servers read to trust the front proxy
  // (kube-apiserver's cluster authentication trust controller): the
  // extension-apiserver-authentication ConfigMap in kube-system, kept
  // current at each start, and the Role that may read it.
  Status SeedAuthenticationTrust() {
    auto list = [](std::initializer_list<std::string_view> items) {
      json::array a;
      for (auto i : items) a.emplace_back(i);
      return json::serialize(a);
    };
    json::object data{{"client-ca-file", creds.ca_cert_pem},
                      {"requestheader-client-ca-file", creds.front_proxy_ca_pem},
                      {"requestheader-allowed-names", list({kFrontProxyUser})},
                      {"requestheader-username-headers", list({"X-Remote-User"})},
                      {"requestheader-group-headers", list({"X-Remote-Group"})},
                      {"requestheader-extra-headers-prefix", list({"X-Remote-Extra-"})}};
    const api::ResourceType* configmaps = api::FindResource("", "v1", "configmaps");
    const std::string name = "extension-apiserver-authentication";
    bool created = false;
    KISO_RETURN_IF_ERROR(CreateIfMissing(
        configmaps,
        json::object{{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata", json::object{{"name", name}, {"namespace", "kube-system"}}},
                     {"data", data}},
        &created));
    if (!created) {
      Target t{configmaps, "kube-system", name, "", "update"};
      Request req = OwnRequest("PUT");
      auto updated = GuaranteedUpdate(ctx, t, req, [&](json::object& current) -> api::ApiStatus {
        current["data"] = data;
        return std::nullopt;
      });
      if (!updated.ok()) {
        return MakeStatus(Code::kInternal, "update configmap {}: {}", name,
                          updated.error().message);
      }
    }
    return CreateIfMissing(
        api::FindResource("rbac.authorization.k8s.io", "v1", "roles"),
        json::object{
            {"apiVersion", "rbac.authorization.k8s.io/v1"},
            {"kind", "Role"},
            {"metadata", json::object{{"name", "extension-apiserver-authentication-reader"},
                                      {"namespace", "kube-system"}}},
            {"rules", json::array{json::object{{"apiGroups", json::array{""}},
                                               {"resources", json::array{"configmaps"}},
                                               {"resourceNames", json::array{name}},
                                               {"verbs", json::array{"get", "list", "watch"}}}}}});
  }

  // The two classes every cluster has (kube-apiserver's scheduling post-start hook).
  Status SeedPriorityClasses() {
    const api::ResourceType* type = api::FindResource("scheduling.k8s.io", "v1", "priorityclasses");
    struct Class {
      const char* name;
      int64_t value;
      const char* description;
    };
    for (const Class& c :
         {Class{"system-node-critical", 2000001000,
                "Used for system critical pods that must not be moved from their current node."},
          Class{"system-cluster-critical", 2000000000,
                "Used for system critical pods that must run in the cluster, but can be moved to "
                "another node if necessary."}}) {
      KISO_RETURN_IF_ERROR(
          CreateIfMissing(type, json::object{{"apiVersion", "scheduling.k8s.io/v1"},
                                             {"kind", "PriorityClass"},
                                             {"metadata", json::object{{"name", c.name}}},
                                             {"value", c.value},
                                             {"description", c.description}}));
    }
    return Status::Ok();
  }

  // The default roles and bindings (authz/bootstrap_policy.h): created when
  // missing; a role that may be updated gets back the default rules it lacks,
  // a binding its default subjects.
  Status SeedPolicy() {
    auto reconcile = [&](const char* plural, json::object obj) -> Status {
      const api::ResourceType* type = api::FindResource("rbac.authorization.k8s.io", "v1", plural);
      std::string name(api::GetString(obj, {"metadata", "name"}));
      bool created = false;
      KISO_RETURN_IF_ERROR(CreateIfMissing(type, obj, &created));
      if (created) return Status::Ok();
      Target t{type, "", name, "", "update"};
      Request req = OwnRequest("PUT");
      auto updated = GuaranteedUpdate(ctx, t, req, [&](json::object& current) -> api::ApiStatus {
        if (api::GetString(current, {"metadata", "annotations",
                                     "rbac.authorization.kubernetes.io/autoupdate"}) == "false")
          return std::nullopt;
        if (std::string_view(plural) == "clusterroles") {
          if (obj.contains("aggregationRule")) {
            current["aggregationRule"] = obj["aggregationRule"];
            return std::nullopt;
          }
          std::vector<PolicyRule> missing;
          if (!Covers(RulesOf(current), RulesOf(obj), &missing)) current["rules"] = obj["rules"];
          return std::nullopt;
        }
        json::value& subjects = current["subjects"];
        if (!subjects.is_array()) subjects = json::array();
        for (const auto& want : obj["subjects"].as_array()) {
          bool has = false;
          for (const auto& s : subjects.as_array()) has |= s == want;
          if (!has) subjects.as_array().push_back(want);
        }
        return std::nullopt;
      });
      if (!updated.ok()) {
        return MakeStatus(Code::kInternal, "update {} {}: {}", plural, name,
                          updated.error().message);
      }
      return Status::Ok();
    };
    for (auto& role : BootstrapClusterRoles())
      KISO_RETURN_IF_ERROR(reconcile("clusterroles", std::move(role)));
    for (auto& binding : BootstrapClusterRoleBindings())
      KISO_RETURN_IF_ERROR(reconcile("clusterrolebindings", std::move(binding)));
    return Status::Ok();
  }

  // Every interval, compacts to the revision seen one interval earlier, so
  // watches and paginated lists have at least one interval to resume (as
  // kube-apiserver's compactor does for etcd).
  void CompactLoop() {
    store::Revision previous = 0;
    std::unique_lock lock(mu);
    while (!stop_cv.wait_for(lock, options.compaction_interval, [&] { return stopping; })) {
      lock.unlock();
      auto current = store->CurrentRevision();
      if (current.ok()) {
        if (previous > 0) {
          Status s = store->Compact(previous);
          if (!s.ok() && s.code() != Code::kCompacted)
            spdlog::warn("compact to revision {}: {}", previous, s.ToString());
        }
        previous = *current;
      }
      lock.lock();
    }
  }
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(store::Store* store,
                                                    const ApiServerOptions& options) {
  // spdlog's registry is made on first use: here, before any thread of ours logs.
  (void)spdlog::default_logger_raw();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  KISO_ASSIGN_OR_RETURN(impl->ctx.service_cidr, Ipv4Cidr::Parse(options.service_cidr));
  // The server's certificate also names the kubernetes Service's address, and
  // the addresses it listens on and advertises when they are not every one.
  std::vector<std::string> service_address = {impl->ctx.service_cidr.Address(1)};
  for (const std::string& a : {options.address, options.advertise_address}) {
    if (!a.empty() && a != "0.0.0.0" && a != "::") service_address.push_back(a);
  }
  // Where the kubeconfig sends clients: loopback when every address is bound.
  const std::string kubeconfig_host = options.address == "0.0.0.0" ? "127.0.0.1" : options.address;
  KISO_ASSIGN_OR_RETURN(impl->creds, LoadOrCreateCredentials(options.data_dir, kubeconfig_host,
                                                             options.port, service_address));
  impl->store = std::make_unique<InstrumentedStore>(store, &impl->metrics);
  WatchCache::Options cache_options;
  cache_options.history_events = options.watch_history_events;
  KISO_ASSIGN_OR_RETURN(impl->cache, WatchCache::Start(impl->store.get(), cache_options));
  // The kinds of established CustomResourceDefinitions, served before any request is.
  impl->custom_resources = std::make_unique<CustomResourcePublisher>(impl->cache.get());
  impl->ctx.store = impl->store.get();
  impl->ctx.cache = impl->cache.get();
  impl->ctx.metrics = &impl->metrics;
  // Who may do what: ServiceAccount tokens signed by a key of the server's,
  // the Node authorizer, then RBAC over the cached roles and bindings.
  KISO_ASSIGN_OR_RETURN(impl->signer,
                        TokenSigner::LoadOrCreate(options.data_dir + "/tls/service-account.key",
                                                  options.service_account_issuer));
  AuthenticatorOptions authn;
  authn.admin_token = impl->creds.admin_token;
  authn.signer = impl->signer.get();
  authn.api_audiences = {options.service_account_issuer, "kiso"};
  authn.cache = impl->cache.get();
  impl->authn = std::make_unique<Authenticator>(std::move(authn));
  impl->rbac = std::make_unique<Rbac>(impl->cache.get());
  impl->node_authz = std::make_unique<NodeAuthorizer>(impl->cache.get());
  impl->authz = std::make_unique<AuthorizerChain>(
      std::vector<const Authorizer*>{impl->node_authz.get(), impl->rbac.get()});
  impl->ctx.authn = impl->authn.get();
  impl->ctx.authz = impl->authz.get();
  impl->ctx.rbac = impl->rbac.get();
  impl->ctx.signer = impl->signer.get();
  impl->admission = DefaultAdmission();
  impl->ctx.admission = impl->admission.get();
  KISO_RETURN_IF_ERROR(impl->SeedNamespaces());
  KISO_RETURN_IF_ERROR(impl->SeedPolicy());
  KISO_RETURN_IF_ERROR(impl->SeedPriorityClasses());
  KISO_RETURN_IF_ERROR(impl->SeedAuthenticationTrust());
  impl->aggregator = std::make_unique<Aggregator>(&impl->ctx, impl->creds);
  impl->ctx.aggregator = impl->aggregator.get();

  HttpsServerOptions http;
  http.address = options.address;
  http.port = options.port;
  http.cert_pem = impl->creds.server_cert_pem;
  http.key_pem = impl->creds.server_key_pem;
  http.client_ca_pem = impl->creds.ca_cert_pem;
  http.fairness = options.fairness;
  http.max_connections_per_client = options.max_connections_per_client;
  http.idle_timeout = options.http_idle_timeout;
  http.max_streams = options.http2_max_streams;
  Impl* raw = impl.get();
  http.quick = [raw](const Request& r) { return raw->Quick(r); };
  KISO_ASSIGN_OR_RETURN(impl->http, HttpsServer::Start(http, [raw](Request& r) {
                          Response res = raw->HandleHttp(r);
                          EncodeObject(res, r);  // The wire needs bytes.
                          return res;
                        }));
  impl->ctx.server_address = options.address + ":" + std::to_string(impl->http->port());
  // Where pods reach this server: the address asked for, the listening one
  // unless it is loopback or any, else the host's primary address.
  std::string advertise = options.advertise_address;
  if (advertise.empty() && options.address != "0.0.0.0" && !options.address.starts_with("127."))
    advertise = options.address;
  if (advertise.empty()) advertise = PrimaryIpv4();
  impl->advertise = advertise;
  KISO_RETURN_IF_ERROR(impl->SeedKubernetesService(advertise, impl->http->port()));
  if (options.port == 0) {
    // The kubeconfig must name the port actually bound.
    KISO_ASSIGN_OR_RETURN(
        impl->creds, LoadOrCreateCredentials(options.data_dir, kubeconfig_host, impl->http->port(),
                                             service_address));
  }
  impl->compactor = std::thread([raw] { raw->CompactLoop(); });
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

void ApiServer::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  impl_->http->Stop();
}

ApiServer::~ApiServer() {
  Stop();
  if (impl_->compactor.joinable()) impl_->compactor.join();
  impl_->http.reset();  // Joins every connection (and so every watch) first.
  // What reads the cache goes before it: the authorizers hold its indexes.
  impl_->authz.reset();
  impl_->node_authz.reset();
  impl_->rbac.reset();
  impl_->authn.reset();
  impl_->custom_resources.reset();
  impl_->aggregator.reset();
  impl_->cache.reset();
}

uint16_t ApiServer::port() const { return impl_->http->port(); }
Response ApiServer::ServeInProcess(const Request& request) {
  Response res = impl_->Handle(request, true);
  res.Flatten();  // The in-process client parses one string.
  return res;
}

void ApiServer::ServeNodeStreams(const std::string& node, NodeStreamHandler handler) {
  impl_->streams.Register(node, std::move(handler));
}
const std::string& ApiServer::kubeconfig_path() const { return impl_->creds.kubeconfig_path; }
const std::string& ApiServer::admin_token() const { return impl_->creds.admin_token; }
const std::string& ApiServer::ca_cert_pem() const { return impl_->creds.ca_cert_pem; }

const std::string& ApiServer::advertise_address() const { return impl_->advertise; }

}  // namespace kiso::apiserver
