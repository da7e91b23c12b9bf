// Status and Result<T>: how every kiso part reports failure. No exceptions
// cross a module boundary; codes mirror the Kubernetes/etcd reasons callers
// map them to (NotFound → 404, Conflict → 409, Compacted → 410 Expired, ...).
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kiso {

enum class Code {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kConflict,           // A precondition (compare) on the current state failed.
  kInvalidArgument,    // The request itself is malformed; nothing was changed.
  kCompacted,          // The requested revision has been compacted away (HTTP 410).
  kResourceExhausted,  // Disk full, buffer overflow: retry after the cause is gone.
  kUnavailable,        // The backend cannot be reached; safe to retry.
  kCancelled,          // The operation was cancelled by the caller or by shutdown.
  kDeadlineExceeded,
  kDataLoss,          // Stored data is corrupt.
  kInternal,          // A bug or an unexpected backend failure.
  kUnauthenticated,   // No valid credentials (HTTP 401).
  kPermissionDenied,  // Authenticated, but not allowed (HTTP 403).
};

// Returns the upper-camel name of `code` ("NotFound"), as Kubernetes spells reasons.
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: key /a not found" — for logs and test failure output.
  std::string ToString() const;

  // Prepends context: Status(kNotFound, "x").Annotate("open y") → "open y: x".
  Status Annotate(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename... Args>
Status MakeStatus(Code code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::format(format, std::forward<Args>(args)...));
}

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) status_ = Status(Code::kInternal, "Result constructed from an OK status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace kiso

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define KISO_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::kiso::Status kiso_status_ = (expr);        \
    if (!kiso_status_.ok()) return kiso_status_; \
  } while (false)

// The declaration argument (`auto x`) cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define KISO_CONCAT_INNER(a, b) a##b
#define KISO_CONCAT(a, b) KISO_CONCAT_INNER(a, b)
// KISO_ASSIGN_OR_RETURN(auto x, ResultExpr()): binds the value or returns the Status.
#define KISO_ASSIGN_OR_RETURN(lhs, expr) \
  KISO_ASSIGN_OR_RETURN_IMPL(KISO_CONCAT(kiso_result_, __LINE__), lhs, expr)
#define KISO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
