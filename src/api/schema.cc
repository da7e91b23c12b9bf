#include "api/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdint>

#include "api/schema_model.h"
#include "api/validation.h"
#include "common/clock.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

using schema::Field;
using schema::Type;
using schema::TypeRef;

// RFC 3339 ("2006-01-02T15:04:05Z", fractions and offsets allowed), as metav1.Time parses.
bool IsRfc3339(std::string_view s) {
  auto digits = [&](size_t at, size_t n) {
    if (at + n > s.size()) return false;
    for (size_t i = at; i < at + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
  };
  if (!digits(0, 4) || s.size() < 20 || s[4] != '-' || !digits(5, 2) || s[7] != '-' ||
      !digits(8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(11, 2) || s[13] != ':' ||
      !digits(14, 2) || s[16] != ':' || !digits(17, 2))
    return false;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    size_t start = ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return false;
  }
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size();
  return i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && digits(i + 1, 2) && s[i + 3] == ':' &&
         digits(i + 4, 2);
}

// Base64 (standard alphabet, padded; line breaks ignored), as encoding/json
// decodes []byte: the offset of the first byte that breaks it, or npos.
size_t IllegalBase64(std::string_view s) {
  size_t data = 0;  // Characters that count (not line breaks).
  size_t pad = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\r' || c == '\n') continue;
    bool alpha = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
    if (c == '=') {
      if (++pad > 2) return i;
    } else if (!alpha || pad > 0) {
      return i;
    }
    ++data;
  }
  return data % 4 == 0 ? std::string_view::npos : s.size();
}

std::string JsonKindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return "string";
    case json::kind::bool_:
      return "bool";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
    case json::kind::null:
      return "null";
    default:
      return "number";
  }
}

class Checker {
 public:
  explicit Checker(SchemaFindings& out) : out_(out) {}

  void Struct(const json::object& obj, const Type& type) {
    structs_.push_back(&type);
    for (const auto& [key, child] : obj) {
      path_.push_back({key, -1});
      if (const Field* field = type.Find(key)) {
        Value(child, field->type);
      } else {
        out_.unknown_fields.push_back(Path());
      }
      path_.pop_back();
    }
    structs_.pop_back();
  }

 private:
  struct Segment {
    std::string_view name;  // A field, or with index == -2 a map key.
    int64_t index;          // -1: a field; ≥ 0: a list element.
  };

  // "spec.containers[0].image": how validation names a field.
  std::string Path() const {
    std::string out;
    for (const auto& s : path_) {
      if (s.index >= 0) {
        out += fmt::format("[{}]", s.index);
      } else if (s.index == -2) {
        out += fmt::format("[{}]", s.name);
      } else {
        if (!out.empty()) out += '.';
        out += s.name;
      }
    }
    return out;
  }

  // "DeploymentSpec.spec.replicas": how Go's decoder names a field.
  std::string GoField() const {
    std::string out = structs_.empty() ? "" : std::string(structs_.back()->GoName());
    for (const auto& s : path_) {
      if (s.index == -1) out += "." + std::string(s.name);
    }
    return out;
  }

  void Mismatch(const json::value& v, const TypeRef& t) {
    if (out_.type_error) return;
    std::string what = JsonKindName(v);
    if (v.is_double()) {
      what += fmt::format(" {}", v.get_double());  // As written, not as Boost prints it.
    } else if (v.is_number()) {
      what += " " + json::serialize(v);
    }
    out_.type_error = fmt::format("json: cannot unmarshal {} into Go struct field {} of type {}",
                                  what, GoField(), t.GoName());
  }

  void Fail(std::string message) {
    if (!out_.type_error) out_.type_error = fmt::format("{}: {}", Path(), message);
  }

  static bool FitsInt32(const json::value& v) {
    if (v.is_int64()) return v.get_int64() >= INT32_MIN && v.get_int64() <= INT32_MAX;
    return v.is_uint64() && v.get_uint64() <= INT32_MAX;
  }

  void Value(const json::value& v, const TypeRef& t) {
    using K = TypeRef::Kind;
    if (v.is_null()) return;  // Go decodes null as the zero value.
    switch (t.kind) {
      case K::kAny:
      case K::kRawJson:
        return;
      case K::kString:
        if (!v.is_string()) Mismatch(v, t);
        return;
      case K::kEnum:
        if (!v.is_string()) return Mismatch(v, t);
        if (!v.get_string().empty() &&
            std::find(t.values.begin(), t.values.end(), v.get_string()) == t.values.end()) {
          // Sorted, as upstream's sets.List prints them.
          std::vector<std::string> sorted = t.values;
          std::sort(sorted.begin(), sorted.end());
          std::string list;
          for (const auto& a : sorted) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", a);
          out_.unsupported.push_back({"FieldValueNotSupported",
                                      fmt::format("Unsupported value: \"{}\": supported values: {}",
                                                  std::string_view(v.get_string()), list),
                                      Path()});
        }
        return;
      case K::kBool:
        if (!v.is_bool()) Mismatch(v, t);
        return;
      case K::kInt32:
        if (!FitsInt32(v)) Mismatch(v, t);
        return;
      case K::kInt64:
        if (!v.is_int64()) Mismatch(v, t);
        return;
      case K::kFloat:
        if (!v.is_number()) Mismatch(v, t);
        return;
      case K::kIntOrString:
        if (!v.is_string() && !FitsInt32(v)) Mismatch(v, t);
        return;
      case K::kQuantity: {
        long double milli = 0;
        if (v.is_number()) return;
        if (!v.is_string()) return Mismatch(v, t);
        if (!ParseQuantityMilli(v.get_string(), &milli)) Fail(std::string(kQuantityError));
        return;
      }
      case K::kTime:
      case K::kMicroTime:
        if (!v.is_string()) return Mismatch(v, t);
        if (!v.get_string().empty() && !IsRfc3339(v.get_string())) {
          Fail(fmt::format("parsing time \"{}\": not an RFC 3339 time (2006-01-02T15:04:05Z07:00)",
                           std::string_view(v.get_string())));
        }
        return;
      case K::kDuration:
        if (!v.is_string()) return Mismatch(v, t);
        if (!ParseGoDuration(v.get_string())) {
          Fail(fmt::format("time: invalid duration \"{}\"", std::string_view(v.get_string())));
        }
        return;
      case K::kBytes:
        if (!v.is_string()) return Mismatch(v, t);
        if (size_t at = IllegalBase64(v.get_string()); at != std::string_view::npos)
          Fail(fmt::format("illegal base64 data at input byte {}", at));
        return;
      case K::kList: {
        const auto* arr = v.if_array();
        if (!arr) return Mismatch(v, t);
        int64_t i = 0;
        for (const auto& e : *arr) {
          path_.push_back({"", i++});
          Value(e, *t.element);
          path_.pop_back();
        }
        return;
      }
      case K::kMap: {
        const auto* obj = v.if_object();
        if (!obj) return Mismatch(v, t);
        for (const auto& [key, e] : *obj) {
          path_.push_back({key, -2});
          Value(e, *t.element);
          path_.pop_back();
        }
        return;
      }
      case K::kStruct:
        if (!v.is_object()) return Mismatch(v, t);
        Struct(v.get_object(), *t.type);
        return;
    }
  }

  SchemaFindings& out_;
  std::vector<Segment> path_;
  std::vector<const Type*> structs_;
};

const Type* KindType(std::string_view kind) {
  // Only complete declarations are used: a broken one would refuse valid objects.
  if (!schema::DeclarationErrors().empty()) return nullptr;
  const Type* type = schema::FindType(kind);
  return type;
}

}  // namespace

SchemaFindings CheckSchema(std::string_view kind, const json::object& obj) {
  SchemaFindings out;
  if (const Type* type = KindType(kind)) Checker(out).Struct(obj, *type);
  return out;
}

SchemaFindings CheckSchema(std::string_view kind, const json::value& obj) {
  return obj.is_object() ? CheckSchema(kind, obj.get_object()) : SchemaFindings{};
}

std::vector<std::string> UnknownFields(std::string_view kind, const json::value& obj) {
  return CheckSchema(kind, obj).unknown_fields;
}

namespace {

void DropUnknown(json::value& v, const TypeRef& t);

void DropUnknown(json::object& obj, const Type& type) {
  for (auto it = obj.begin(); it != obj.end();) {
    if (const Field* field = type.Find(it->key())) {
      DropUnknown(it->value(), field->type);
      ++it;
    } else {
      it = obj.erase(it);
    }
  }
}

void DropUnknown(json::value& v, const TypeRef& t) {
  using K = TypeRef::Kind;
  switch (t.kind) {
    case K::kStruct:
      if (auto* obj = v.if_object()) DropUnknown(*obj, *t.type);
      return;
    case K::kList:
      if (auto* arr = v.if_array()) {
        for (auto& e : *arr) DropUnknown(e, *t.element);
      }
      return;
    case K::kMap:
      if (auto* obj = v.if_object()) {
        for (auto& [key, e] : *obj) DropUnknown(e, *t.element);
      }
      return;
    default:
      return;
  }
}

}  // namespace

void DropUnknownFields(std::string_view kind, json::object& obj) {
  if (const Type* type = KindType(kind)) DropUnknown(obj, *type);
}

bool HasSchema(std::string_view kind) { return KindType(kind) != nullptr; }

std::vector<std::string> SchemaErrors() { return schema::DeclarationErrors(); }

}  // namespace kiso::api
