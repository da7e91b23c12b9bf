#include "apiserver/node_streams.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::apiserver {

Response NodeStreams::Handle(const Context& ctx, const Target& t, const Request& req) {
  auto kv = ReadObject(ctx, t);
  if (!kv.ok()) return ErrorResponse(kv.error());
  auto pod = DecodeStored(*kv);
  if (!pod.ok()) return ErrorResponse(pod.error());
  std::string node(api::GetString(*pod, {"spec", "nodeName"}));
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
  api::ApiError e = api::ServiceUnavailable(
      fmt::format("pods/{} for pod {}/{}: node {:?} has no kiso agent serving container streams "
                  "here (kiso serves them for the agent embedded in kiso server only)",
                  t.subresource, t.ns, t.name, node));
  return ErrorResponse(e);
}

void NodeStreams::Register(const std::string& node, NodeStreamHandler handler) {
  std::lock_guard lock(mu_);
  handlers_[node] = std::move(handler);
}

}  // namespace kiso::apiserver
