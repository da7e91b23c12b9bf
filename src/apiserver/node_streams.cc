#include "apiserver/node_streams.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::apiserver {

Response NodeStreams::Handle(const Context& ctx, const Target& t, const Request& req) {
  (void)req;
  auto kv = ReadObject(ctx, t);
  if (!kv.ok()) return ErrorResponse(kv.error());
  auto pod = DecodeStored(*kv);
  if (!pod.ok()) return ErrorResponse(pod.error());
  std::string node(api::GetString(*pod, {"spec", "nodeName"}));
  if (node.empty()) {
    return ErrorResponse(
        api::BadRequest(fmt::format("pod {} does not have a host assigned", t.name)));
  }
  api::ApiError e = api::ServiceUnavailable(
      fmt::format("pods/{} for pod {}/{}: node {:?} has no kiso agent serving container streams "
                  "(the node agent is not built yet)",
                  t.subresource, t.ns, t.name, node));
  return ErrorResponse(e);
}

}  // namespace kiso::apiserver
