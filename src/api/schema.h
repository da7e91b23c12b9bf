// The schema of every kind kiso serves, read from the type declarations in
// schema_types.cc (the Go structs of k8s.io/api): what the API server's
// decoder would refuse, and what fieldValidation=Strict reports.
//   - A value whose JSON type its field cannot hold (a string for an int32, a
//     bad quantity, time or base64 value) is refused as kube-apiserver's
//     decoder refuses it: 400, "json: cannot unmarshal string into Go struct
//     field DeploymentSpec.spec.replicas of type int32".
//   - A value outside its field's enumeration is a 422 cause (Unsupported value).
//   - A field the type does not have is an unknown field (Strict: 400).
// Kinds without a schema, and fields typed `any`, accept anything.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/errors.h"

namespace kiso::api {

struct SchemaFindings {
  // The first value its field's type cannot hold, in the decoder's words.
  std::optional<std::string> type_error;
  // Paths of fields the types do not have ("spec.containers[0].foo"), in document order.
  std::vector<std::string> unknown_fields;
  // Values outside their enumeration.
  std::vector<Cause> unsupported;
};

// Checks `obj` against the schema of `kind`. Linear in the object's size.
SchemaFindings CheckSchema(std::string_view kind, const boost::json::object& obj);
SchemaFindings CheckSchema(std::string_view kind, const boost::json::value& obj);

// Paths of fields in `obj` that `kind` does not have (CheckSchema's unknown_fields).
std::vector<std::string> UnknownFields(std::string_view kind, const boost::json::value& obj);
// Removes those fields from `obj`, as Go's decoder drops what its struct lacks.
void DropUnknownFields(std::string_view kind, boost::json::object& obj);

// Whether kiso has a schema for `kind`, and every type it names is declared
// (the declarations parse; a unit test holds it to that).
bool HasSchema(std::string_view kind);
std::vector<std::string> SchemaErrors();

// The declarations (schema_types.cc).
std::string_view SchemaText();

}  // namespace kiso::api
