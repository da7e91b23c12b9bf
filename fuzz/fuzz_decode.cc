// Decoding request bodies: JSON (strict and not), YAML, then what the API
// server does with a decoded object (unknown fields, defaults, validation,
// managed fields). No input may crash or hang it.
#include <boost/json.hpp>
#include <cstdint>
#include <string_view>

#include "api/managed_fields.h"
#include "api/object.h"
#include "api/resources.h"
#include "api/schema.h"
#include "api/selector.h"
#include "api/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiso::api;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)LabelSelector::Parse(text);
  (void)FieldSelector::Parse(text);
  for (bool strict : {false, true}) (void)ParseJson(text, strict);
  auto parsed = ParseJson(text);
  auto yaml = ParseYaml(text);
  for (auto* v : {parsed.ok() ? &*parsed : nullptr, yaml.ok() ? &*yaml : nullptr}) {
    if (!v || !v->is_object()) continue;
    for (const auto& type : BuiltinResources()) {
      boost::json::object obj = v->get_object();
      (void)UnknownFields(type.kind, *v);
      ApplyDefaults(type, obj);
      (void)Validate(type, obj, nullptr);
      RecordUpdate(type, "fuzz", nullptr, obj);
      (void)boost::json::serialize(obj);
    }
  }
  return 0;
}
