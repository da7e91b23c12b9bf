// POST: create (with generateName), 201 with the stored object.
#include <boost/json.hpp>

#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

Response HandleCreate(const Context& ctx, const Target& t, const Request& req) {
  auto body = DecodeBody(req, t);
  if (!body.ok()) return ErrorResponse(body.error());
  if (!body->is_object()) {
    return ErrorResponse(api::BadRequest("the request body must be a JSON object"));
  }
  auto created = CreateObject(ctx, t, req, std::move(body->get_object()));
  if (!created.ok()) return ErrorResponse(created.error());
  return ObjectResponse(201, *created);
}

}  // namespace kiso::apiserver
