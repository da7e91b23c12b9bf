// The protobuf codec and OpenAPI v2 document through kiso-protobuf.so,
// loaded by the first call (see protobuf.h).
#include <boost/json.hpp>

#include "api/object.h"
#include "api/openapi_proto.h"
#include "api/protobuf.h"
#include "api/resources.h"
#include "api/schema_model.h"
#include "common/base64.h"
#include "common/clock.h"

namespace kiso::api {

namespace {

struct Entries {
  decltype(&KisoDecodeProtobuf) decode = nullptr;
  decltype(&KisoEncodeProtobuf) encode = nullptr;
  decltype(&KisoEncodeProtobufWatchEvent) encode_event = nullptr;
  decltype(&KisoProtobufSchemaErrors) schema_errors = nullptr;
  decltype(&KisoEncodeOpenApiV2) encode_openapi = nullptr;
};

// Looked up once (a watch event may be encoded thousands of times a second).
const Result<Entries>& Loaded() {
  static const Result<Entries> entries = []() -> Result<Entries> {
    Entries e;
    auto find = [](const char* symbol, auto& fn) -> Status {
      KISO_ASSIGN_OR_RETURN(void* address,
                            PluginSymbol("kiso-protobuf.so", KISO_PROTOBUF_PLUGIN_BUILT, symbol));
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(address);
      return Status::Ok();
    };
    KISO_RETURN_IF_ERROR(find("KisoDecodeProtobuf", e.decode));
    KISO_RETURN_IF_ERROR(find("KisoEncodeProtobuf", e.encode));
    KISO_RETURN_IF_ERROR(find("KisoEncodeProtobufWatchEvent", e.encode_event));
    KISO_RETURN_IF_ERROR(find("KisoProtobufSchemaErrors", e.schema_errors));
    KISO_RETURN_IF_ERROR(find("KisoEncodeOpenApiV2", e.encode_openapi));
    return e;
  }();
  return entries;
}

// What kiso-protobuf.so takes from the executable that loads it. Named here
// so that every executable linking this file has them: a static library's
// objects are linked only when something refers to them, and the plugin's
// references do not count at link time. `nm -D --undefined-only` on the
// plugin lists them; one missing makes its loading fail, naming it.
[[gnu::used]] const void* const kPluginTakes[] = {
    reinterpret_cast<const void*>(&Base64Decode),
    reinterpret_cast<const void*>(&Base64Encode),
    reinterpret_cast<const void*>(&ParseRfc3339),
    reinterpret_cast<const void*>(static_cast<std::string (*)(WallTime, int)>(&FormatRfc3339)),
    reinterpret_cast<const void*>(&ParseGoDuration),
    reinterpret_cast<const void*>(&FormatGoDuration),
    reinterpret_cast<const void*>(&BadRequest),
    reinterpret_cast<const void*>(&NotAcceptable),
    reinterpret_cast<const void*>(&UnsupportedMediaType),
    reinterpret_cast<const void*>(&RequestEntityTooLarge),
    reinterpret_cast<const void*>(&InternalError),
    reinterpret_cast<const void*>(&schema::DeclarationErrors),
    reinterpret_cast<const void*>(&schema::AllTypes),
    reinterpret_cast<const void*>(&schema::FindType),
    reinterpret_cast<const void*>(&FindKind),
    reinterpret_cast<const void*>(
        static_cast<std::string_view (*)(const boost::json::value&,
                                         std::initializer_list<std::string_view>)>(&GetString)),
    reinterpret_cast<const void*>(&ParseJson),
};
[[gnu::used]] std::string TakesGoName(const schema::TypeRef& t) { return t.GoName(); }

// Calls the plugin's entry `fn` with `args` and a place for its answer.
template <class T, class Fn, class... Args>
ApiOr<T> Call(Fn Entries::*fn, Args... args) {
  const auto& e = Loaded();
  if (!e.ok()) return InternalError(e.status().message());
  ApiOr<T> out = InternalError("the protobuf plugin answered nothing");
  ((*e).*fn)(args..., &out);
  return out;
}

}  // namespace

ApiOr<boost::json::value> DecodeProtobuf(std::string_view body) {
  return Call<boost::json::value>(&Entries::decode, body);
}

ApiOr<std::string> EncodeProtobuf(const boost::json::value& object) {
  return Call<std::string>(&Entries::encode, &object);
}

ApiOr<std::string> EncodeProtobufWatchEvent(std::string_view type,
                                            const boost::json::value& object) {
  return Call<std::string>(&Entries::encode_event, type, &object);
}

const std::vector<std::string>& ProtobufSchemaErrors() {
  const auto& e = Loaded();
  if (e.ok()) return *e->schema_errors();
  static const std::vector<std::string> unusable{"kiso-protobuf.so: " + e.status().message()};
  return unusable;
}

ApiOr<std::string> EncodeOpenApiV2(const boost::json::object& doc) {
  return Call<std::string>(&Entries::encode_openapi, &doc);
}

}  // namespace kiso::api
