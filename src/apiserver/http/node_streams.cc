#include "apiserver/http/node_streams.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::apiserver {

namespace json = boost::json;

Response NodeStreams::Handle(const Context& ctx, const Target& t, const Request& req) {
  auto kv = ReadObject(ctx, t);
  if (!kv.ok()) return ErrorResponse(kv.error());
  auto pod = DecodeStored(*kv);
  if (!pod.ok()) return ErrorResponse(pod.error());
  // A node's proxy: the object is the Node, served by its own agent.
  const bool node_proxy = t.type->plural == "nodes";
  std::string node(node_proxy ? t.name : api::GetString(*pod, {"spec", "nodeName"}));
  if (node.empty()) {
    return ErrorResponse(
        api::BadRequest(fmt::format("pod {} does not have a host assigned", t.name)));
  }
  NodeStreamHandler handler;
  {
    std::lock_guard lock(mu_);
    auto it = handlers_.find(node);
    if (it != handlers_.end()) handler = it->second;
  }
  if (handler) return handler(*pod, t.subresource, req);
  if (auto tunnel = ClaimFor(node)) {
    Response r;
    r.relay = std::move(tunnel);
    return r;
  }
  api::ApiError e = api::ServiceUnavailable(fmt::format(
      "{} {}{}: no kiso agent of node {:?} is connected to serve it (is `kiso agent` running "
      "there, and can it reach this server?)",
      node_proxy ? "nodes/proxy for node" : "pods/" + t.subresource + " for pod",
      node_proxy ? "" : t.ns + "/", t.name, node));
  return ErrorResponse(e);
}

std::shared_ptr<Tunnel> NodeStreams::ClaimFor(const std::string& node) {
  // A busy agent dials a replacement within a round trip; a gone one never does.
  constexpr auto kWait = std::chrono::seconds(5);
  auto deadline = std::chrono::steady_clock::now() + kWait;
  std::unique_lock lock(mu_);
  while (true) {
    auto it = tunnels_.find(node);
    if (it == tunnels_.end()) return nullptr;  // Never connected: do not wait.
    auto& idle = it->second;
    while (!idle.empty()) {
      auto t = std::move(idle.back());
      idle.pop_back();
      if (ClaimTunnel(*t)) return t;
    }
    if (tunnel_added_.wait_until(lock, deadline) == std::cv_status::timeout) return nullptr;
  }
}

Response NodeStreams::AcceptTunnel(const Request& req) {
  constexpr size_t kMaxIdle = 8;  // Per node; the oldest go first.
  std::string_view rest = std::string_view(req.path).substr(kTunnelPrefix.size());
  size_t slash = rest.find('/');
  std::string node(rest.substr(0, slash));
  if (slash == std::string_view::npos || rest.substr(slash) != "/tunnel" || node.empty()) {
    return ErrorResponse(api::NotFoundPath());
  }
  if (req.method != "GET" || req.Header("upgrade") != kTunnelProtocol) {
    return ErrorResponse(
        api::BadRequest(fmt::format("a node tunnel is a GET with Upgrade: {}", kTunnelProtocol)));
  }
  Response r;
  r.accept_tunnel = [this, node](std::shared_ptr<Tunnel> t) {
    std::lock_guard lock(mu_);
    auto& idle = tunnels_[node];
    idle.push_back(std::move(t));
    if (idle.size() > kMaxIdle) {
      CloseTunnel(*idle.front());
      idle.erase(idle.begin());
    }
    tunnel_added_.notify_all();
  };
  return r;
}

std::optional<json::value> NodeStreams::Summary(const json::value& node) {
  std::string name(api::GetString(node, {"metadata", "name"}));
  NodeStreamHandler handler;
  {
    std::lock_guard lock(mu_);
    auto it = handlers_.find(name);
    if (it != handlers_.end()) handler = it->second;
  }
  const std::string path = fmt::format("/api/v1/nodes/{}/proxy/stats/summary", name);
  std::string body;
  if (handler) {  // This process's own agent.
    Request req;
    req.method = "GET";
    req.path = path;
    Response r = handler(node, "proxy", req);
    if (r.status != 200) return std::nullopt;
    body = std::move(r.body);
  } else if (auto tunnel = ClaimFor(name)) {  // An agent elsewhere, down its tunnel.
    auto r = GetThrough(tunnel, path, std::chrono::seconds(10));
    if (!r.ok() || r->first != 200) return std::nullopt;
    body = std::move(r->second);
  } else {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec) return std::nullopt;
  return v;
}

void NodeStreams::Register(const std::string& node, NodeStreamHandler handler) {
  std::lock_guard lock(mu_);
  handlers_[node] = std::move(handler);
}

}  // namespace kiso::apiserver
