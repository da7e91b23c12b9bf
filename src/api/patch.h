// The three PATCH formats the API server accepts, applied to JSON documents:
//   JSON patch (RFC 6902), JSON merge patch (RFC 7386), and Kubernetes'
//   strategic merge patch, whose list merge keys and directives are those of
//   k8s.io/apimachinery/pkg/util/strategicpatch (../shared/notes/smp-keys.txt).
// Every function leaves its input untouched and fails with InvalidArgument
// (message suitable for a 422/400 body) on a malformed patch. The work each
// does is linear in the sizes of the document and the patch (list merges
// index their elements), so a patch's cost is bounded by the body limit.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso::api {

// At most kMaxJsonPatchOperations operations, and copy operations may
// duplicate at most kMaxDocumentBytes in all (kube-apiserver's limits): past
// them InvalidArgument / ResourceExhausted naming the limit.
inline constexpr size_t kMaxJsonPatchOperations = 10000;
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
