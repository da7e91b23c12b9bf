// Kubernetes' protobuf encoding (application/vnd.kubernetes.protobuf) of the
// kinds kiso serves. The messages are built at start-up from the declared
// types (schema_types.cc: field numbers, pointers, embedded structs) into a
// libprotobuf DescriptorPool; bodies are parsed and written by libprotobuf's
// dynamic messages and converted to and from the JSON form by reflection.
//
// A body is the four bytes "k8s\0" and a runtime.Unknown: {1: TypeMeta
// {apiVersion, kind}, 2: raw (the kind's message), 3: contentEncoding, 4:
// contentType}. Decoding refuses, with a message naming it, anything kiso
// would otherwise drop: a field number a type does not declare, a field of a
// type with no protobuf form. Scalars Go holds by value and sends as zero are
// left out, as `omitempty` leaves them out of JSON; Go pointers keep theirs.
//
// libprotobuf (about 1.8 MB of a server's memory once mapped and initialised)
// is in a plugin, kiso-protobuf.so, with this codec and openapi_proto.h's: it
// is loaded by the first protobuf body or document a server is asked for, so
// a server whose clients speak JSON (kubectl, the Python client) never maps it
// (see common/plugin.h).
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/errors.h"
#include "common/plugin.h"

namespace kiso::api {

inline constexpr std::string_view kProtobufMediaType = "application/vnd.kubernetes.protobuf";

// Decodes a protobuf body into the object's JSON form (apiVersion and kind
// from the envelope). 400 naming what is wrong; 413 for a body whose decoding
// would take more memory than a body may cause (kMaxDocumentBytes' worth of
// JSON, roughly).
ApiOr<boost::json::value> DecodeProtobuf(std::string_view body);

// Encodes an object (or a list: kind "<Kind>List" with items) as a protobuf
// body. 406 for a kind, or a field value, that has no protobuf form.
ApiOr<std::string> EncodeProtobuf(const boost::json::value& object);

// One watch event as a protobuf watch stream frames it: a 4-byte big-endian
// length, then a meta/v1 WatchEvent without envelope {1: type, 2: object (a
// RawExtension whose raw is the object's "k8s\0" body)}.
ApiOr<std::string> EncodeProtobufWatchEvent(std::string_view type,
                                            const boost::json::value& object);

// Problems building the messages from the declarations (a unit test holds this empty).
const std::vector<std::string>& ProtobufSchemaErrors();

}  // namespace kiso::api

// kiso-protobuf.so's entry points behind the functions above.
KISO_PLUGIN_ENTRY void KisoDecodeProtobuf(std::string_view body,
                                          kiso::api::ApiOr<boost::json::value>* out);
KISO_PLUGIN_ENTRY void KisoEncodeProtobuf(const boost::json::value* object,
                                          kiso::api::ApiOr<std::string>* out);
KISO_PLUGIN_ENTRY void KisoEncodeProtobufWatchEvent(std::string_view type,
                                                    const boost::json::value* object,
                                                    kiso::api::ApiOr<std::string>* out);
KISO_PLUGIN_ENTRY const std::vector<std::string>* KisoProtobufSchemaErrors();
