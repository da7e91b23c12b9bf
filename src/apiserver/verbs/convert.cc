// A request at a version its kind is not stored at (autoscaling/v1's
// HorizontalPodAutoscaler, stored as v2; a custom kind's other versions): the body is decoded and
// checked at the request's version, converted to the storage version and served there; every object
// in the answer (one, a list's items, a table's rows, each watch event) is converted back. A patch
// is applied to the object at the request's version (patch.cc).
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/conversion.h"
#include "api/custom_resource.h"
#include "api/object.h"
#include "api/protobuf.h"
#include "api/schema.h"
#include "api/structural.h"
#include "api/validation.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

// Converts every stored object in an answer to `served`'s version.
void ConvertAnswer(const api::ResourceType& served, json::value& answer) {
  auto* obj = answer.if_object();
  if (obj == nullptr) return;
  std::string_view kind = api::GetString(*obj, {"kind"});
  if (kind == served.kind) {
    api::ConvertFromStorage(served, *obj);
  } else if (kind == served.kind + "List") {
    if (auto* items = obj->if_contains("items"); items && items->is_array()) {
      for (auto& item : items->get_array()) {
        if (item.is_object()) api::ConvertFromStorage(served, item.get_object());
      }
    }
    (*obj)["apiVersion"] = served.GroupVersion();
  } else if (kind == "Table") {
    if (auto* rows = obj->if_contains("rows"); rows && rows->is_array()) {
      for (auto& row : rows->get_array()) {
        auto* object = row.is_object() ? row.get_object().if_contains("object") : nullptr;
        if (object && object->is_object()) api::ConvertFromStorage(served, object->get_object());
      }
    }
  }
}

// Watch events (JSON lines from the handler) converted, then framed as the
// client asked: JSON lines, or length-delimited protobuf WatchEvents.
class ConvertingEvents : public EventStream {
 public:
  ConvertingEvents(std::shared_ptr<EventStream> in, const api::ResourceType& served, bool protobuf)
      : in_(std::move(in)), served_(served), protobuf_(protobuf) {}

  void Start(std::function<void()> wake) override { in_->Start(std::move(wake)); }
  void Cancel() override { in_->Cancel(); }
  Pulled Pull(size_t max_bytes) override {
    Pulled p = in_->Pull(max_bytes);
    pending_ += p.data;
    p.data.clear();
    size_t start = 0;
    for (size_t end = pending_.find('\n'); end != std::string::npos;
         start = end + 1, end = pending_.find('\n', start)) {
      auto event = api::ParseJson(std::string_view(pending_).substr(start, end - start));
      if (!event.ok() || !event->is_object()) continue;
      json::object& e = event->get_object();
      if (auto* object = e.if_contains("object")) ConvertAnswer(served_, *object);
      if (protobuf_) {
        auto framed = api::EncodeProtobufWatchEvent(api::GetString(e, {"type"}), e["object"]);
        if (framed.ok()) p.data += *framed;
      } else {
        p.data += json::serialize(e);
        p.data += '\n';
      }
    }
    pending_.erase(0, start);
    return p;
  }

 private:
  std::shared_ptr<EventStream> in_;
  const api::ResourceType& served_;
  bool protobuf_;
  std::string pending_;
};

// A create or update body at `t`'s version: decoded and checked there (as
// the decoder of that version would), then converted to the storage version.
api::ApiOr<json::value> BodyForStorage(const Target& t, const Request& req) {
  auto body = DecodeBody(req, t);
  if (!body.ok()) return body;
  if (!body->is_object()) return api::BadRequest("the request body must be a JSON object");
  json::object& obj = body->get_object();
  if (auto err = CheckIdentity(t, obj)) return *err;
  if (t.type->custom) {
    // Pruned, defaulted and validated by the request version's schema, then
    // by the storage version's where it is stored.
    if (const auto& structural = t.type->custom->schema) {
      api::Prune(*structural, *body);
      api::ApplySchemaDefaults(*structural, *body);
      auto causes = api::ValidateSchema(*structural, *body);
      if (!causes.empty()) {
        return api::Invalid(*t.type, std::string(api::GetString(*body, {"metadata", "name"})),
                            std::move(causes));
      }
    }
    if (auto err = api::ConvertToStorage(*t.type, body->get_object())) return *err;
    // What the storage version has no field for is not stored (upstream prunes
    // it when the object is read at a version without it).
    const api::ResourceType& stored = t.type->Storage();
    if (stored.custom && stored.custom->schema) api::Prune(*stored.custom->schema, *body);
    return body;
  }
  api::SchemaFindings schema = api::CheckSchema(t.type->Schema(), obj);
  if (schema.type_error) {
    return api::BadRequest(fmt::format("{} in version \"{}\" cannot be handled as a {}: {}",
                                       t.type->kind, t.type->version, t.type->kind,
                                       *schema.type_error));
  }
  if (!schema.unknown_fields.empty()) api::DropUnknownFields(t.type->Schema(), obj);
  if (auto err = api::ConvertToStorage(*t.type, obj)) return *err;
  return body;
}

}  // namespace

Response ServeConverted(const Context& ctx, const Target& t, const Request& req,
                        const std::function<Response(const Target&, const Request&)>& serve) {
  Target stored = t;
  stored.type = &t.type->Storage();
  Request inner = req;
  inner.warnings.clear();
  inner.decoded_events = false;  // ConvertingEvents converts JSON lines.
  bool protobuf_watch = t.verb == "watch" && WantsProtobufOnly(req) && !WantsTable(req);
  if (protobuf_watch) inner.headers["accept"] = "application/json";
  Response res;
  if (t.verb == "create" || t.verb == "update") {
    auto body = BodyForStorage(t, req);
    if (!body.ok()) return ErrorResponse(body.error());
    inner.object = std::make_shared<const json::value>(std::move(*body));
    inner.body.clear();
    inner.headers["content-type"] = "application/json";
    res = serve(stored, inner);
  } else if (t.verb == "patch") {
    res = HandlePatch(ctx, t, inner);  // Applied at t's version, stored at the storage version.
  } else {
    res = serve(stored, inner);
  }
  for (auto& w : inner.warnings) req.Warn(std::move(w));
  if (res.events) {
    res.events = std::make_shared<ConvertingEvents>(std::move(res.events), *t.type, protobuf_watch);
    if (protobuf_watch) res.content_type = std::string(api::kProtobufMediaType) + ";stream=watch";
    return res;
  }
  if (res.status >= 300 || res.content_type != "application/json") return res;
  if (!res.object) {
    res.Flatten();
    auto parsed = api::ParseJson(res.body);
    if (!parsed.ok()) return res;
    res.object = std::make_shared<json::value>(std::move(*parsed));
    res.body.clear();
  }
  ConvertAnswer(*t.type, *res.object);
  return res;
}

}  // namespace kiso::apiserver
