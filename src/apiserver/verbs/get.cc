// GET of one object: a linearizable read from the store (as kube-apiserver
// reads etcd for GET unless resourceVersion=0 is given, which the cache serves).
#include <boost/json.hpp>

#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

Response HandleGet(const Context& ctx, const Target& t, const Request& req) {
  std::string body;
  if (req.Query("resourceVersion") == std::optional<std::string_view>("0")) {
    auto snap = ctx.cache->List(t.type->StoreKey(t.ns, t.name));
    for (const auto& obj : snap.objects) {
      if (obj->key == t.type->StoreKey(t.ns, t.name)) body = obj->json;
    }
    if (body.empty()) return ErrorResponse(api::NotFound(*t.type, t.name));
  } else {
    auto kv = ReadObject(ctx, t);
    if (!kv.ok()) return ErrorResponse(kv.error());
    auto obj = DecodeStored(*kv);
    if (!obj.ok()) return ErrorResponse(obj.error());
    if (WantsTable(req)) {
      auto cached = MakeCachedObject(kv->key, kv->value, kv->mod_revision);
      if (!cached.ok()) return ErrorResponse(api::FromStatus(cached.status()));
      return JsonResponse(200, RenderTable(*t.type, {*cached}, req, "", "", true));
    }
    body = boost::json::serialize(*obj);
  }
  return JsonResponse(200, std::move(body));
}

}  // namespace kiso::apiserver
