#include "api/errors.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/resources.h"

namespace kiso::api {

namespace json = boost::json;

std::string ApiError::ToJson() const {
  json::object out;
  out["kind"] = "Status";
  out["apiVersion"] = "v1";
  out["metadata"] = json::object();
  out["status"] = "Failure";
  if (!message.empty()) out["message"] = message;
  if (!reason.empty()) out["reason"] = reason;
  if (!name.empty() || !kind.empty() || !causes.empty() || retry_after_seconds > 0) {
    json::object details;
    if (!name.empty()) details["name"] = name;
    if (!group.empty()) details["group"] = group;
    if (!kind.empty()) details["kind"] = kind;
    if (!uid.empty()) details["uid"] = uid;
    if (!causes.empty()) {
      json::array list;
      for (const auto& c : causes) {
        json::object cause;
        if (!c.reason.empty()) cause["reason"] = c.reason;
        if (!c.message.empty()) cause["message"] = c.message;
        if (!c.field.empty()) cause["field"] = c.field;
        list.push_back(std::move(cause));
      }
      details["causes"] = std::move(list);
    }
    if (retry_after_seconds > 0) details["retryAfterSeconds"] = retry_after_seconds;
    out["details"] = std::move(details);
  }
  out["code"] = code;
  return json::serialize(out) + "\n";
}

namespace {

ApiError WithDetails(int code, std::string reason, std::string message, const ResourceType& type,
                     const std::string& name) {
  ApiError e;
  e.code = code;
  e.reason = std::move(reason);
  e.message = std::move(message);
  e.name = name;
  e.group = type.group;
  e.kind = type.plural;
  return e;
}

ApiError Simple(int code, std::string reason, std::string message) {
  ApiError e;
  e.code = code;
  e.reason = std::move(reason);
  e.message = std::move(message);
  return e;
}

}  // namespace

ApiError NotFound(const ResourceType& type, const std::string& name) {
  return WithDetails(404, "NotFound", fmt::format("{} \"{}\" not found", type.Qualified(), name),
                     type, name);
}

ApiError AlreadyExists(const ResourceType& type, const std::string& name) {
  return WithDetails(409, "AlreadyExists",
                     fmt::format("{} \"{}\" already exists", type.Qualified(), name), type, name);
}

ApiError Conflict(const ResourceType& type, const std::string& name, const std::string& why) {
  return WithDetails(
      409, "Conflict",
      fmt::format("Operation cannot be fulfilled on {} \"{}\": {}", type.Qualified(), name, why),
      type, name);
}

ApiError ModifiedConflict(const ResourceType& type, const std::string& name) {
  return Conflict(type, name,
                  "the object has been modified; please apply your changes to the latest version "
                  "and try again");
}

ApiError Invalid(const ResourceType& type, const std::string& name, std::vector<Cause> causes) {
  // apimachinery NewInvalid: "Kind.group \"name\" is invalid: field: msg" or "[a: x, b: y]".
  std::string qualified_kind = type.group.empty() ? type.kind : type.kind + "." + type.group;
  std::string detail;
  for (size_t i = 0; i < causes.size(); ++i) {
    if (i > 0) detail += ", ";
    detail +=
        causes[i].field.empty() ? causes[i].message : causes[i].field + ": " + causes[i].message;
  }
  if (causes.size() > 1) detail = "[" + detail + "]";
  ApiError e;
  e.code = 422;
  e.reason = "Invalid";
  e.message = fmt::format("{} \"{}\" is invalid: {}", qualified_kind, name, detail);
  e.name = name;
  e.group = type.group;
  e.kind = type.kind;
  e.causes = std::move(causes);
  return e;
}

ApiError Forbidden(const ResourceType& type, const std::string& name, std::string_view why) {
  return Forbidden(name.empty()
                       ? fmt::format("{} is forbidden: {}", type.Qualified(), why)
                       : fmt::format("{} {:?} is forbidden: {}", type.Qualified(), name, why),
                   type.group, type.plural, name);
}

ApiError Forbidden(std::string message, std::string group, std::string resource, std::string name) {
  ApiError e = Simple(403, "Forbidden", std::move(message));
  e.name = std::move(name);
  e.group = std::move(group);
  e.kind = std::move(resource);
  return e;
}

ApiError BadRequest(std::string message) { return Simple(400, "BadRequest", std::move(message)); }
ApiError Expired(std::string message) { return Simple(410, "Expired", std::move(message)); }
ApiError Gone(std::string message) { return Simple(410, "Gone", std::move(message)); }
ApiError MethodNotAllowed() {
  return Simple(405, "MethodNotAllowed",
                "the server does not allow this method on the requested resource");
}
ApiError UnsupportedMediaType(std::string message) {
  return Simple(415, "UnsupportedMediaType", std::move(message));
}
ApiError NotAcceptable(std::string message) {
  return Simple(406, "NotAcceptable", std::move(message));
}
ApiError Unauthorized() { return Simple(401, "Unauthorized", "Unauthorized"); }
ApiError RequestEntityTooLarge(std::string message) {
  return Simple(413, "RequestEntityTooLarge", std::move(message));
}
ApiError TooManyRequests() {
  ApiError e = Simple(429, "TooManyRequests", "Too many requests, please try again later.");
  e.retry_after_seconds = 1;
  return e;
}
ApiError InternalError(const std::string& message) {
  ApiError e = Simple(500, "InternalError", "Internal error occurred: " + message);
  e.causes.push_back({"", message, ""});
  return e;
}
ApiError ServiceUnavailable(std::string message) {
  return Simple(503, "ServiceUnavailable", std::move(message));
}
ApiError NotFoundPath() {
  return Simple(404, "NotFound", "the server could not find the requested resource");
}

ApiError FromStatus(const Status& status) {
  switch (status.code()) {
    case Code::kCompacted:
      return Expired(status.message());
    case Code::kInvalidArgument:
      return BadRequest(status.message());
    case Code::kUnauthenticated:
      return Unauthorized();
    case Code::kPermissionDenied:
      return Simple(403, "Forbidden", status.message());
    case Code::kResourceExhausted:
    case Code::kUnavailable:
    case Code::kDeadlineExceeded: {
      ApiError e = ServiceUnavailable("storage: " + status.message());
      e.retry_after_seconds = 1;
      return e;
    }
    default:
      return InternalError(status.message());
  }
}

}  // namespace kiso::api
