// Helpers over objects held as JSON (boost::json): decoding request bodies,
// reading metadata, and the few field paths the API server needs.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso::api {

using Labels = std::map<std::string, std::string, std::less<>>;

// What a decoded document may be, whatever its source (a request body, a
// patch's result, YAML with its aliases expanded): as large as a request body
// may be (kube-apiserver's 3 MiB), and nested no deeper than kMaxDepth.
inline constexpr size_t kMaxDocumentBytes = size_t{3} << 20;
inline constexpr size_t kMaxDepth = 100;

// Parses JSON, nested at most kMaxDepth deep (InvalidArgument naming the
// limit). With `strict`, a key repeated in one object is an error
// (the API server's fieldValidation=Strict: `duplicate field "x"`: AlreadyExists).
Result<boost::json::value> ParseJson(std::string_view text, bool strict = false);
// The first key repeated within one object of a JSON text ("spec.replicas"),
// or nullopt; what fieldValidation=Warn reports and Strict refuses.
std::optional<std::string> FirstDuplicateKey(std::string_view text);
// Parses YAML (one document) into JSON; used for application/yaml bodies and
// application/apply-patch+yaml. Scalars keep YAML's core-schema types (int,
// float, bool, null). Aliases are expanded into copies, so the work is bounded
// as go-yaml bounds it since CVE-2019-11253: a document whose JSON would pass
// `max_bytes` (its aliases expanded) is ResourceExhausted, one nested deeper
// than kMaxDepth InvalidArgument, each message naming the limit.
Result<boost::json::value> ParseYaml(std::string_view text, size_t max_bytes = kMaxDocumentBytes);
// The length of `v` serialised as compact JSON, counted without building the
// text; stops counting (and returns a value > limit) once past `limit`.
size_t SerializedSize(const boost::json::value& v, size_t limit = SIZE_MAX);

// The value at `path` (object keys), or nullptr.
const boost::json::value* Find(const boost::json::value& v,
                               std::initializer_list<std::string_view> path);
// The string at `path`, or "" when absent or not a string.
std::string_view GetString(const boost::json::value& v,
                           std::initializer_list<std::string_view> path);
// The integer at `path`, or `fallback` when absent or not an integer.
int64_t GetInt(const boost::json::value& v, std::initializer_list<std::string_view> path,
               int64_t fallback = 0);
// The array at `path`, or an empty one when absent or not an array.
const boost::json::array& GetArray(const boost::json::value& v,
                                   std::initializer_list<std::string_view> path);
// The same, starting from an object (no copy into a value).
const boost::json::value* Find(const boost::json::object& obj,
                               std::initializer_list<std::string_view> path);
std::string_view GetString(const boost::json::object& obj,
                           std::initializer_list<std::string_view> path);
const boost::json::array& GetArray(const boost::json::object& obj,
                                   std::initializer_list<std::string_view> path);
// The object at `key` in `parent`, created (empty) if absent or not an object.
boost::json::object& Child(boost::json::object& parent, std::string_view key);

Labels GetLabels(const boost::json::value& obj);
// Whether status.conditions has `type` with status "True" (a pod's or node's Ready…).
bool ConditionTrue(const boost::json::value& obj, std::string_view type);
bool ConditionTrue(const boost::json::object& obj, std::string_view type);
Labels GetLabels(const boost::json::object& obj);

// RFC 3339 UTC with seconds ("2026-01-01T00:00:00Z"), as metav1.Time serialises.
std::string NowRfc3339();
std::string NewUid();  // A random RFC 4122 version-4 UUID.
// "ns/name" of an object: the key caches, work queues and indexes use.
std::string KeyOf(const boost::json::value& obj);
std::pair<std::string, std::string> SplitKey(const std::string& key);
// Removes metadata.managedFields: what informers keep of an object (often a
// third of it, and read by no controller; kube-controller-manager's and
// kube-scheduler's informers drop them too).
void DropManagedFields(boost::json::value& obj);

}  // namespace kiso::api
