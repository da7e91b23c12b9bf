// Field selectors: which fields each kind supports (as kube-apiserver's
// GetAttrs/field label conversion funcs do) and how to read them.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kiso::apiserver {

// The field labels `kind` supports: metadata.name and metadata.namespace for
// every kind, plus the kind's own (pods: spec.nodeName, status.phase, …).
const std::vector<std::string>& FieldSelectorFields(std::string_view kind);
// The object's value for a supported field ("" when unset).
std::string FieldValue(const boost::json::value& obj, std::string_view field);

}  // namespace kiso::apiserver
