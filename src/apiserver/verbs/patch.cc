// PATCH: JSON patch, merge patch, strategic merge patch, and server-side
// apply (application/apply-patch+yaml), which creates the object when missing.
#include "api/patch.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/conversion.h"
#include "api/managed_fields.h"
#include "api/object.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

enum class PatchType { kJson, kMerge, kStrategic, kApply };

std::optional<PatchType> TypeOf(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  if (content_type == "application/json-patch+json") return PatchType::kJson;
  if (content_type == "application/merge-patch+json") return PatchType::kMerge;
  if (content_type == "application/strategic-merge-patch+json") return PatchType::kStrategic;
  if (content_type == "application/apply-patch+yaml" ||
      content_type == "application/apply-patch+cbor")
    return PatchType::kApply;
  return std::nullopt;
}

Response ApplyPatch(const Context& ctx, const Target& t, const Request& req, PatchType type,
                    const json::value& patch) {
  std::string manager = FieldManager(req);
  bool force = req.QueryBool("force");
  if (type == PatchType::kApply) {
    if (!req.Query("fieldManager")) {
      return ErrorResponse(api::BadRequest(
          "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required "
          "for apply patch"));
    }
    if (!patch.is_object()) return ErrorResponse(api::BadRequest("apply patch must be an object"));
  }
  auto mutate = [&](json::object& current) -> api::ApiStatus {
    switch (type) {
      case PatchType::kJson: {
        auto out = api::ApplyJsonPatch(json::value(current), patch);
        if (!out.ok() && out.status().code() == Code::kResourceExhausted)
          return api::RequestEntityTooLarge(out.status().message());
        if (!out.ok()) {
          api::ApiError e;
          e.code = 422;
          e.reason = "Invalid";
          e.message = out.status().message();
          return e;
        }
        if (!out->is_object()) return api::BadRequest("the patched document is not an object");
        current = std::move(out->get_object());
        return std::nullopt;
      }
      case PatchType::kMerge: {
        json::value out = api::ApplyMergePatch(json::value(current), patch);
        if (!out.is_object()) return api::BadRequest("the patched document is not an object");
        current = std::move(out.get_object());
        return std::nullopt;
      }
      case PatchType::kStrategic: {
        auto out = api::ApplyStrategicMergePatch(json::value(current), patch, t.type->kind);
        if (!out.ok()) return api::BadRequest(out.status().message());
        current = std::move(out->get_object());
        return std::nullopt;
      }
      case PatchType::kApply:
        return api::Apply(*t.type, manager, force, patch.get_object(), current);
    }
    return std::nullopt;
  };
  auto mode = FieldValidationOf(req);
  if (!mode.ok()) return ErrorResponse(mode.error());
  // The patch applies to the object at the request's version; it is stored at the kind's
  // storage version (api/conversion.h), the same version for most kinds.
  Target stored = t;
  stored.type = &t.type->Storage();
  auto checked = [&](json::object& current) -> api::ApiStatus {
    api::ConvertFromStorage(*t.type, current);
    if (auto err = mutate(current)) return err;
    if (auto err = CheckUnknownFields(req, *mode, *t.type, json::value(current))) return err;
    return api::ConvertToStorage(*t.type, current);
  };
  auto updated = GuaranteedUpdate(ctx, stored, req, checked);
  if (updated.ok()) return ObjectResponse(200, *updated);
  if (type == PatchType::kApply && updated.error().code == 404 && t.subresource.empty()) {
    // Apply to a missing object creates it.
    json::object obj;
    if (auto err = api::Apply(*t.type, manager, force, patch.get_object(), obj)) {
      return ErrorResponse(*err);
    }
    api::Child(obj, "metadata")["name"] = t.name;
    if (auto err = api::ConvertToStorage(*t.type, obj)) return ErrorResponse(*err);
    auto created = CreateObject(ctx, stored, req, std::move(obj));
    if (!created.ok()) return ErrorResponse(created.error());
    return ObjectResponse(201, *created);
  }
  return ErrorResponse(updated.error());
}

}  // namespace

Response HandlePatch(const Context& ctx, const Target& t, const Request& req) {
  auto type = TypeOf(req.Header("content-type"));
  if (!type) {
    return ErrorResponse(api::UnsupportedMediaType(fmt::format(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml, application/strategic-merge-patch+json")));
  }
  json::value patch;
  if (*type == PatchType::kApply) {
    auto parsed = ParseBody(req, /*yaml=*/true);
    if (!parsed.ok()) return ErrorResponse(DecodeError(parsed.status()));
    patch = std::move(*parsed);
  } else {
    auto mode = FieldValidationOf(req);
    if (!mode.ok()) return ErrorResponse(mode.error());
    auto parsed = ParseBody(req, /*yaml=*/false, *mode == FieldValidation::kStrict);
    if (parsed.ok() && *mode == FieldValidation::kWarn && !req.object) {
      if (auto duplicate = api::FirstDuplicateKey(req.body))
        req.Warn(fmt::format("duplicate field \"{}\"", *duplicate));
    }
    if (!parsed.ok()) {
      return ErrorResponse(
          api::BadRequest(parsed.status().code() == Code::kAlreadyExists
                              ? fmt::format("strict decoding error: {}", parsed.status().message())
                              : parsed.status().message()));
    }
    patch = std::move(*parsed);
  }
  return ApplyPatch(ctx, t, req, *type, patch);
}

}  // namespace kiso::apiserver
