// An OpenAPI v2 (Swagger 2.0) document in the protobuf form client-go asks
// /openapi/v2 for (Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf):
// gnostic's openapi.v2.Document. kubectl, Helm and other Go clients read their
// schemas from it. Written with libprotobuf's wire format; what the document
// says in JSON Schema keywords goes to the Schema message's fields, vendor
// extensions (x-…) and values (default, enum, example) as YAML text, which
// JSON is. Keywords Swagger 2.0 lacks (anyOf, nullable…) are left out, as
// upstream's v2 leaves them out.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "api/errors.h"
#include "common/plugin.h"

namespace kiso::api {

// What client-go asks for, and (the '@' is not valid in a media type) what the answer says it is.
inline constexpr std::string_view kOpenApiV2ProtobufMediaType =
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
inline constexpr std::string_view kOpenApiV2ProtobufContentType =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

// The document `doc` (swagger, info, paths with their operations' responses
// and extensions, definitions) as an openapi.v2.Document.
// In kiso-protobuf.so, with libprotobuf (see protobuf.h).
ApiOr<std::string> EncodeOpenApiV2(const boost::json::object& doc);

}  // namespace kiso::api

// kiso-protobuf.so's entry point behind EncodeOpenApiV2.
KISO_PLUGIN_ENTRY void KisoEncodeOpenApiV2(const boost::json::object* doc,
                                           kiso::api::ApiOr<std::string>* out);
