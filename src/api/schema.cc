#include "api/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdint>
#include <map>
#include <memory>
#include <sstream>

#include "api/validation.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

struct Type;

// A field's type, as declared (see schema_types.cc).
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
    kBytes,
    kAny,
    kEnum,
    kList,
    kMap,
    kStruct,
  };
  Kind kind = Kind::kAny;
  std::string struct_name;           // kStruct, until resolved.
  const Type* resolved = nullptr;    // kStruct.
  std::shared_ptr<TypeRef> element;  // kList, kMap.
  std::vector<std::string> values;   // kEnum.

  // How Go names the type in a decoding error.
  std::string GoName() const {
    switch (kind) {
      case Kind::kString:
      case Kind::kEnum:
        return "string";
      case Kind::kInt32:
        return "int32";
      case Kind::kInt64:
        return "int64";
      case Kind::kBool:
        return "bool";
      case Kind::kFloat:
        return "float64";
      case Kind::kIntOrString:
        return "intstr.IntOrString";
      case Kind::kQuantity:
        return "resource.Quantity";
      case Kind::kTime:
        return "v1.Time";
      case Kind::kBytes:
        return "[]uint8";
      case Kind::kAny:
        return "interface {}";
      case Kind::kList:
        return "[]" + element->GoName();
      case Kind::kMap:
        return "map[string]" + element->GoName();
      case Kind::kStruct:
        return "v1." + struct_name;
    }
    return "";
  }
};

struct Type {
  std::string name;
  std::string base;  // Included type, if any.
  std::vector<std::pair<std::string, TypeRef>> fields;
  std::map<std::string, size_t, std::less<>> index;  // Field name → position in fields.

  const TypeRef* Field(std::string_view field) const {
    auto it = index.find(field);
    return it == index.end() ? nullptr : &fields[it->second].second;
  }
};

struct Registry {
  std::map<std::string, Type, std::less<>> types;
  std::vector<std::string> errors;  // Declarations that do not parse or resolve.
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

TypeRef ParseTypeRef(std::string_view text) {
  using K = TypeRef::Kind;
  TypeRef t;
  if (text.starts_with("[]")) {
    t.kind = K::kList;
    t.element = std::make_shared<TypeRef>(ParseTypeRef(text.substr(2)));
    return t;
  }
  if (text.starts_with("map[") && text.ends_with("]")) {
    t.kind = K::kMap;
    t.element = std::make_shared<TypeRef>(ParseTypeRef(text.substr(4, text.size() - 5)));
    return t;
  }
  if (text.starts_with("enum(") && text.ends_with(")")) {
    t.kind = K::kEnum;
    std::string_view list = text.substr(5, text.size() - 6);
    while (!list.empty()) {
      size_t bar = list.find('|');
      t.values.emplace_back(list.substr(0, bar));
      if (bar == std::string_view::npos) break;
      list.remove_prefix(bar + 1);
    }
    return t;
  }
  static const auto& kBuiltins = *new std::map<std::string_view, K>{
      {"string", K::kString},     {"int32", K::kInt32},   {"int64", K::kInt64},
      {"bool", K::kBool},         {"float64", K::kFloat}, {"IntOrString", K::kIntOrString},
      {"Quantity", K::kQuantity}, {"Time", K::kTime},     {"MicroTime", K::kTime},
      {"bytes", K::kBytes},       {"any", K::kAny}};
  if (auto it = kBuiltins.find(text); it != kBuiltins.end()) {
    t.kind = it->second;
    return t;
  }
  t.kind = K::kStruct;
  t.struct_name = std::string(text);
  return t;
}

bool Resolve(Registry& r, TypeRef& t, const std::string& where) {
  if (t.element) return Resolve(r, *t.element, where);
  if (t.kind != TypeRef::Kind::kStruct) return true;
  auto it = r.types.find(t.struct_name);
  if (it == r.types.end()) {
    r.errors.push_back(fmt::format("{}: unknown type {:?}", where, t.struct_name));
    return false;
  }
  t.resolved = &it->second;
  return true;
}

// Copies the fields of `type`'s base (and its base's…) in front of its own.
void Include(Registry& r, Type& type, int depth) {
  if (type.base.empty() || depth > 8) return;
  auto it = r.types.find(type.base);
  if (it == r.types.end()) {
    r.errors.push_back(fmt::format("{}: unknown base type {:?}", type.name, type.base));
    return;
  }
  Include(r, it->second, depth + 1);
  std::vector<std::pair<std::string, TypeRef>> fields = it->second.fields;
  fields.insert(fields.end(), type.fields.begin(), type.fields.end());
  type.fields = std::move(fields);
  type.base.clear();
}

Registry Parse(std::string_view text) {
  Registry r;
  Type* current = nullptr;
  std::istringstream in{std::string(text)};
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string_view line = raw;
    if (Trim(line).empty() || Trim(line).starts_with('#')) continue;
    if (!std::isspace(static_cast<unsigned char>(line.front()))) {
      line = Trim(line);
      bool kind = line.starts_with("kind ");
      if (kind) line = Trim(line.substr(5));
      std::string base;
      if (size_t colon = line.find(':'); colon != std::string_view::npos) {
        base = std::string(Trim(line.substr(colon + 1)));
        line = Trim(line.substr(0, colon));
      }
      std::string name(line);
      if (r.types.contains(name))
        r.errors.push_back(fmt::format("line {}: {} twice", line_no, name));
      current = &r.types[name];
      current->name = name;
      current->base = std::move(base);
      if (kind) {
        current->fields.emplace_back("apiVersion", ParseTypeRef("string"));
        current->fields.emplace_back("kind", ParseTypeRef("string"));
        current->fields.emplace_back("metadata", ParseTypeRef("ObjectMeta"));
      }
      continue;
    }
    line = Trim(line);
    size_t space = line.find(' ');
    if (!current || space == std::string_view::npos) {
      r.errors.push_back(fmt::format("line {}: expected `name type`: {:?}", line_no, raw));
      continue;
    }
    current->fields.emplace_back(std::string(line.substr(0, space)),
                                 ParseTypeRef(Trim(line.substr(space + 1))));
  }
  for (auto& [name, type] : r.types) Include(r, type, 0);
  for (auto& [name, type] : r.types) {
    for (size_t i = 0; i < type.fields.size(); ++i) {
      auto& [field, ref] = type.fields[i];
      if (!type.index.emplace(field, i).second)
        r.errors.push_back(fmt::format("{}.{} declared twice", name, field));
      Resolve(r, ref, fmt::format("{}.{}", name, field));
    }
  }
  return r;
}

const Registry& Types() {
  // Never destroyed: threads may check objects while the process exits.
  static const auto& registry = *new Registry(Parse(SchemaText()));
  return registry;
}

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
      if (const TypeRef* field = type.Field(key)) {
        Value(child, *field);
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
    std::string out = structs_.empty() ? "" : structs_.back()->name;
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
        if (!v.is_string()) return Mismatch(v, t);
        if (!v.get_string().empty() && !IsRfc3339(v.get_string())) {
          Fail(fmt::format("parsing time \"{}\": not an RFC 3339 time (2006-01-02T15:04:05Z07:00)",
                           std::string_view(v.get_string())));
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
        Struct(v.get_object(), *t.resolved);
        return;
    }
  }

  SchemaFindings& out_;
  std::vector<Segment> path_;
  std::vector<const Type*> structs_;
};

const Type* KindType(std::string_view kind) {
  const auto& r = Types();
  auto it = r.types.find(kind);
  // Only complete declarations are used: a broken one would refuse valid objects.
  return it == r.types.end() || !r.errors.empty() ? nullptr : &it->second;
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

bool HasSchema(std::string_view kind) { return KindType(kind) != nullptr; }

std::vector<std::string> SchemaErrors() { return Types().errors; }

}  // namespace kiso::api
