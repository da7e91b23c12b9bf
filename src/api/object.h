// Helpers over objects held as JSON (boost::json): decoding request bodies,
// reading metadata, and the few field paths the API server needs.
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso::api {

using Labels = std::map<std::string, std::string, std::less<>>;

// Parses JSON. With `strict`, a key repeated in one object is an error
// (the API server's fieldValidation=Strict: `duplicate field "x"`).
Result<boost::json::value> ParseJson(std::string_view text, bool strict = false);
// Parses YAML (one document) into JSON; used for application/apply-patch+yaml
// and by tests. Scalars keep YAML's core-schema types (int, float, bool, null).
Result<boost::json::value> ParseYaml(std::string_view text);

// The value at `path` (object keys), or nullptr.
const boost::json::value* Find(const boost::json::value& v,
                               std::initializer_list<std::string_view> path);
// The string at `path`, or "" when absent or not a string.
std::string_view GetString(const boost::json::value& v,
                           std::initializer_list<std::string_view> path);
// The array at `path`, or an empty one when absent or not an array.
const boost::json::array& GetArray(const boost::json::value& v,
                                   std::initializer_list<std::string_view> path);
// The same, starting from an object (no copy into a value).
const boost::json::value* Find(const boost::json::object& obj,
                               std::initializer_list<std::string_view> path);
std::string_view GetString(const boost::json::object& obj,
                           std::initializer_list<std::string_view> path);
// The object at `key` in `parent`, created (empty) if absent or not an object.
boost::json::object& Child(boost::json::object& parent, std::string_view key);

Labels GetLabels(const boost::json::value& obj);

// RFC 3339 UTC with seconds ("2026-01-01T00:00:00Z"), as metav1.Time serialises.
std::string NowRfc3339();
std::string NewUid();  // A random RFC 4122 version-4 UUID.

}  // namespace kiso::api
