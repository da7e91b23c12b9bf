// ApiError: a Kubernetes `Status` failure (k8s.io/apimachinery/pkg/api/errors),
// serialised exactly as the real API server does — Go struct field order,
// compact, trailing newline — because clients compare the bytes.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiso::api {

struct ResourceType;

struct Cause {
  std::string reason;   // FieldValueRequired, FieldValueInvalid, FieldManagerConflict, ExitCode…
  std::string message;  // "Required value"
  std::string field;    // "spec.containers[0].image"
};

struct ApiError {
  int code = 500;
  std::string reason;  // NotFound, AlreadyExists, Conflict, Invalid, BadRequest, Expired…
  std::string message;
  // StatusDetails: present when name or kind is set.
  std::string name;
  std::string group;
  std::string kind;  // The resource plural, except for Invalid where it is the Kind.
  std::string uid;
  std::vector<Cause> causes;
  int retry_after_seconds = 0;

  // {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",...}\n
  std::string ToJson() const;
};

// Constructors for the reasons kiso returns, with upstream's messages.
ApiError NotFound(const ResourceType& type, const std::string& name);
ApiError AlreadyExists(const ResourceType& type, const std::string& name);
ApiError Conflict(const ResourceType& type, const std::string& name, const std::string& why);
// The optimistic-concurrency conflict: "the object has been modified; …".
ApiError ModifiedConflict(const ResourceType& type, const std::string& name);
ApiError Invalid(const ResourceType& type, const std::string& name, std::vector<Cause> causes);
// 403: upstream's NewForbidden ("pods \"web\" is forbidden: why", or without a
// name "pods is forbidden: why"), details naming the resource.
ApiError Forbidden(const ResourceType& type, const std::string& name, std::string_view why);
// 403 with a message of the caller's (the authorizer's), details as given.
ApiError Forbidden(std::string message, std::string group = "", std::string resource = "",
                   std::string name = "");
ApiError BadRequest(std::string message);
ApiError Expired(std::string message);
ApiError Gone(std::string message);
ApiError MethodNotAllowed();
ApiError UnsupportedMediaType(std::string message);
ApiError NotAcceptable(std::string message);
ApiError Unauthorized();
ApiError RequestEntityTooLarge(std::string message);
// 429 with Retry-After 1 s, as the max-in-flight filter answers.
ApiError TooManyRequests();
ApiError InternalError(const std::string& message);
ApiError ServiceUnavailable(std::string message);
ApiError NotFoundPath();  // "the server could not find the requested resource"
// Maps a store or internal failure to the status a client can act on.
ApiError FromStatus(const Status& status);

// Either a value or an ApiError. The API server's handlers return these.
template <typename T>
class [[nodiscard]] ApiOr {
 public:
  ApiOr(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  ApiOr(ApiError error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return value_.has_value(); }
  const ApiError& error() const { return *error_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  std::optional<ApiError> error_;
};

// For operations that return nothing: std::nullopt is success.
using ApiStatus = std::optional<ApiError>;

}  // namespace kiso::api
