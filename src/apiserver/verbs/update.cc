// PUT: replace the object. A resourceVersion in the body is a precondition
// (409 Conflict when stale); without one the update is unconditional.
#include <boost/json.hpp>

#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

Response HandleUpdate(const Context& ctx, const Target& t, const Request& req) {
  auto body = DecodeBody(req, t);
  if (!body.ok()) return ErrorResponse(body.error());
  if (!body->is_object()) {
    return ErrorResponse(api::BadRequest("the request body must be a JSON object"));
  }
  const boost::json::object& replacement = body->get_object();
  auto updated = GuaranteedUpdate(ctx, t, req, [&](boost::json::object& current) -> api::ApiStatus {
    current = replacement;
    return std::nullopt;
  });
  if (!updated.ok()) return ErrorResponse(updated.error());
  return ObjectResponse(200, *updated);
}

}  // namespace kiso::apiserver
