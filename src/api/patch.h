// The three PATCH formats the API server accepts, applied to JSON documents:
//   JSON patch (RFC 6902), JSON merge patch (RFC 7386), and Kubernetes'
//   strategic merge patch, whose list merge keys and directives are those of
//   k8s.io/apimachinery/pkg/util/strategicpatch (../shared/notes/smp-keys.txt).
// Every function leaves its input untouched and fails with InvalidArgument
// (message suitable for a 422/400 body) on a malformed patch.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso::api {

Result<boost::json::value> ApplyJsonPatch(const boost::json::value& doc,
                                          const boost::json::value& patch);

boost::json::value ApplyMergePatch(const boost::json::value& doc, const boost::json::value& patch);

// `kind` selects the merge keys ("Pod", "Deployment", "Service"…); for a kind
// with no known lists every list is replaced, like a merge patch.
Result<boost::json::value> ApplyStrategicMergePatch(const boost::json::value& doc,
                                                    const boost::json::value& patch,
                                                    std::string_view kind);

// How strategic merge treats the list at `path` (dotted field names from the
// object root, list elements elided: "spec.template.spec.containers.ports").
struct ListStrategy {
  enum class Type { kReplace, kMergeByKey, kMergePrimitives };
  Type type = Type::kReplace;
  std::string key;  // kMergeByKey.
};
ListStrategy ListStrategyFor(std::string_view kind, std::string_view path);

}  // namespace kiso::api
