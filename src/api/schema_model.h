// The declared types of schema_types.cc as a model: what the schema checks
// (schema.cc), the protobuf encoding (proto.cc) and the published OpenAPI
// documents are all read from. One parse, never destroyed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiso::api::schema {

struct Type;

// A field's type, as declared.
struct TypeRef {
  enum class Kind {
    kString,
    kInt32,
    kInt64,
    kBool,
    kFloat,
    kIntOrString,
    kQuantity,
    kTime,
    kMicroTime,
    kDuration,  // metav1.Duration: "1h2m3.5s" in JSON, nanoseconds in protobuf.
    kBytes,
    kRawJson,  // Any JSON value; a RawExtension (bytes of JSON) in protobuf.
    kAny,      // Any JSON value; not in the protobuf encoding.
    kEnum,
    kList,
    kMap,
    kStruct,
  };
  Kind kind = Kind::kAny;
  std::string struct_name;           // kStruct, until resolved.
  const Type* type = nullptr;        // kStruct, once resolved.
  std::shared_ptr<TypeRef> element;  // kList, kMap.
  std::vector<std::string> values;   // kEnum.

  // How Go names the type in a decoding error ("int32", "v1.Container").
  std::string GoName() const;
};

struct Field {
  std::string name;  // The JSON name; the inlined type's name for an inline field.
  TypeRef type;
  int number = 0;        // The protobuf field number; 0 when the field has none.
  bool pointer = false;  // A Go pointer: a zero value is kept, not omitted.
  bool inlined = false;  // A Go embedded struct: its fields are this type's in JSON.
};

struct Type {
  // As declared: Go's name, or `Name@group.version` for a type that differs
  // between versions of its group (HorizontalPodAutoscaler@autoscaling.v1 is
  // k8s.io/api/autoscaling/v1's; plain HorizontalPodAutoscaler the storage
  // version's, autoscaling/v2).
  std::string name;
  // Go's name for it ("HorizontalPodAutoscaler"): `name` without its version.
  std::string_view GoName() const { return std::string_view(name).substr(0, name.find('@')); }
  bool top_level = false;     // A kind: apiVersion and kind travel outside it in protobuf.
  std::vector<Field> fields;  // As declared (bases included), inline fields as such.
  // The JSON view, in Go's encoding order: inline fields replaced by their fields.
  std::vector<const Field*> json_fields;

  // A field of the JSON view by name, or nullptr.
  const Field* Find(std::string_view json_name) const;

 private:
  friend struct Registry;
  std::map<std::string, const Field*, std::less<>> index_;
};

// Every declared type by name, or nullptr.
const Type* FindType(std::string_view name);
const std::map<std::string, Type, std::less<>>& AllTypes();
// Declarations that do not parse or resolve (a unit test holds this empty).
const std::vector<std::string>& DeclarationErrors();

}  // namespace kiso::api::schema
