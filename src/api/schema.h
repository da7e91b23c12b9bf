// Known fields of the served kinds, for fieldValidation=Strict: the API
// server rejects a body with a field its Go types do not have
// (`strict decoding error: unknown field "spec.foo"`). Fields of free-form
// or not yet modelled types are accepted as they are.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kiso::api {

// Paths of fields in `obj` that `kind` does not have ("spec.containers[0].foo"),
// in document order.
std::vector<std::string> UnknownFields(std::string_view kind, const boost::json::value& obj);

}  // namespace kiso::api
