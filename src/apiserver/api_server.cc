#include "apiserver/api_server.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "api/object.h"
#include "apiserver/credentials.h"
#include "apiserver/handlers.h"
#include "apiserver/http_server.h"
#include "apiserver/instrumented_store.h"
#include "apiserver/metrics.h"
#include "apiserver/node_streams.h"
#include "common/recover.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) out.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

// Parses a resource URL; nullopt when the path names no resource kiso serves.
std::optional<Target> ParseTarget(const Request& req) {
  auto segs = Split(req.path);
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
  if (rest.empty() || rest.size() > 3) return std::nullopt;
  t.type = api::FindResource(group, version, rest[0]);
  if (!t.type) return std::nullopt;
  if (!t.ns.empty() && !t.type->namespaced) return std::nullopt;
  if (rest.size() >= 2) t.name = rest[1];
  if (rest.size() == 3) {
    t.subresource = rest[2];
    if (!t.type->FindSubresource(t.subresource)) return std::nullopt;
  }
  const std::string& m = req.method;
  if (m == "GET") {
    t.verb = req.QueryBool("watch") ? "watch" : (t.name.empty() ? "list" : "get");
  } else if (m == "POST") {
    t.verb = "create";
  } else if (m == "PUT") {
    t.verb = "update";
  } else if (m == "PATCH") {
    t.verb = "patch";
  } else if (m == "DELETE") {
    t.verb = t.name.empty() ? "deletecollection" : "delete";
  } else {
    t.verb = "unknown";
  }
  return t;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
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
  Credentials creds;
  Metrics metrics;
  std::unique_ptr<InstrumentedStore> store;
  std::unique_ptr<WatchCache> cache;
  NodeStreams streams;
  Context ctx;
  std::unique_ptr<HttpsServer> http;

  std::mutex mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread compactor;

  Response Route(const Request& req, const std::optional<Target>& target, bool trusted) {
    const std::string& path = req.path;
    if (path == "/healthz" || path == "/livez" || path == "/readyz") {
      auto rev = store->CurrentRevision();
      if (!rev.ok()) return Text(503, "store: " + rev.status().message() + "\n");
      return Text(200, "ok");
    }
    if (path == "/version") {
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
    std::string_view auth = req.Header("authorization");
    bool authenticated =
        auth.starts_with("Bearer ") && ConstantTimeEquals(auth.substr(7), creds.admin_token);
    if (!trusted && !authenticated) {
      return ErrorResponse(api::Unauthorized());
    }
    if (path == "/metrics") return Text(200, metrics.Render());
    if (path.starts_with(kTunnelPrefix)) return streams.AcceptTunnel(req);
    if (auto r = HandleDiscovery(ctx, req)) return *r;
    if (auto r = HandleOpenApi(req)) return *r;
    if (!target) return ErrorResponse(api::NotFoundPath());
    return Dispatch(*target, req);
  }

  Response Dispatch(const Target& t, const Request& req) {
    const std::string& sub = t.subresource;
    const std::string& verb = t.verb;
    // Namespaced objects are named with their namespace; only list and watch span all.
    if (t.type->namespaced && t.ns.empty() && verb != "list" && verb != "watch") {
      return ErrorResponse(api::NotFoundPath());
    }
    if (sub == "log" || sub == "exec" || sub == "attach" || sub == "portforward") {
      return streams.Handle(ctx, t, req);
    }
    if (sub == "scale") {
      if (verb == "get" || verb == "update" || verb == "patch") return HandleScale(ctx, t, req);
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
    Response res;
    try {
      res = Route(req, target, trusted);
    } catch (...) {
      // A bug a request or a stored object found: that request fails, the server goes on.
      ReportRecovered(fmt::format("{} {} {}", req.remote, req.method, req.path),
                      CurrentExceptionMessage());
      res = ErrorResponse(api::InternalError(std::string(CurrentExceptionMessage())));
    }
    std::string verb = target ? target->verb : req.method;
    std::string resource = target ? target->type->plural : "";
    if (target && !target->subresource.empty()) resource += "/" + target->subresource;
    // Streams are counted when they start; their duration is the watch's, not the request's.
    metrics.ObserveRequest(verb, resource, res.status, std::chrono::steady_clock::now() - start);
    spdlog::debug("{} {} {} → {}", req.remote, req.method, req.path, res.status);
    return res;
  }

  // The namespaces every cluster has (kube-apiserver's system namespaces controller).
  Status SeedNamespaces() {
    const api::ResourceType* ns_type = api::FindResource("", "v1", "namespaces");
    for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      Target t{ns_type, "", name, "", "create"};
      Request req;
      req.method = "POST";
      req.headers.emplace("user-agent", "kiso-apiserver/" KISO_VERSION);
      json::object obj{
          {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object{{"name", name}}}};
      auto created = CreateObject(ctx, t, req, std::move(obj));
      if (!created.ok() && created.error().code != 409) {
        return MakeStatus(Code::kInternal, "create namespace {}: {}", name,
                          created.error().message);
      }
    }
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
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  KISO_ASSIGN_OR_RETURN(
      impl->creds,
      LoadOrCreateCredentials(options.data_dir,
                              options.address == "0.0.0.0" ? "127.0.0.1" : options.address,
                              options.port, {}));
  impl->store = std::make_unique<InstrumentedStore>(store, &impl->metrics);
  WatchCache::Options cache_options;
  cache_options.history_events = options.watch_history_events;
  KISO_ASSIGN_OR_RETURN(impl->cache, WatchCache::Start(impl->store.get(), cache_options));
  impl->ctx.store = impl->store.get();
  impl->ctx.cache = impl->cache.get();
  impl->ctx.metrics = &impl->metrics;
  KISO_RETURN_IF_ERROR(impl->SeedNamespaces());

  HttpsServerOptions http;
  http.address = options.address;
  http.port = options.port;
  http.cert_pem = impl->creds.server_cert_pem;
  http.key_pem = impl->creds.server_key_pem;
  http.fairness = options.fairness;
  http.max_connections_per_client = options.max_connections_per_client;
  Impl* raw = impl.get();
  KISO_ASSIGN_OR_RETURN(impl->http, HttpsServer::Start(http, [raw](const Request& r) {
                          Response res = raw->Handle(r, false);
                          EncodeObject(res);  // The wire needs bytes.
                          return res;
                        }));
  impl->ctx.server_address = options.address + ":" + std::to_string(impl->http->port());
  if (options.port == 0) {
    // The kubeconfig must name the port actually bound.
    KISO_ASSIGN_OR_RETURN(impl->creds, LoadOrCreateCredentials(options.data_dir, options.address,
                                                               impl->http->port(), {}));
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
  impl_->cache.reset();
}

uint16_t ApiServer::port() const { return impl_->http->port(); }
Response ApiServer::ServeInProcess(const Request& request) { return impl_->Handle(request, true); }

void ApiServer::ServeNodeStreams(const std::string& node, NodeStreamHandler handler) {
  impl_->streams.Register(node, std::move(handler));
}
const std::string& ApiServer::kubeconfig_path() const { return impl_->creds.kubeconfig_path; }
const std::string& ApiServer::admin_token() const { return impl_->creds.admin_token; }

}  // namespace kiso::apiserver
