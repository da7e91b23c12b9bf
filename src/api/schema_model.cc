#include "api/schema_model.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <sstream>

#include "api/schema.h"

namespace kiso::api::schema {

std::string TypeRef::GoName() const {
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
    case Kind::kMicroTime:
      return "v1.MicroTime";
    case Kind::kDuration:
      return "v1.Duration";
    case Kind::kBytes:
      return "[]uint8";
    case Kind::kRawJson:
      return "runtime.RawExtension";
    case Kind::kAny:
      return "interface {}";
    case Kind::kList:
      return "[]" + element->GoName();
    case Kind::kMap:
      return "map[string]" + element->GoName();
    case Kind::kStruct:
      return "v1." + struct_name.substr(0, struct_name.find('@'));
  }
  return "";
}

const Field* Type::Find(std::string_view json_name) const {
  auto it = index_.find(json_name);
  return it == index_.end() ? nullptr : it->second;
}

namespace {

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
      {"string", K::kString},     {"int32", K::kInt32},     {"int64", K::kInt64},
      {"bool", K::kBool},         {"float64", K::kFloat},   {"IntOrString", K::kIntOrString},
      {"Quantity", K::kQuantity}, {"Time", K::kTime},       {"MicroTime", K::kMicroTime},
      {"bytes", K::kBytes},       {"RawJSON", K::kRawJson}, {"any", K::kAny},
      {"Duration", K::kDuration}};
  if (auto it = kBuiltins.find(text); it != kBuiltins.end()) {
    t.kind = it->second;
    return t;
  }
  t.kind = K::kStruct;
  t.struct_name = std::string(text);
  return t;
}

}  // namespace

struct Registry {
  std::map<std::string, Type, std::less<>> types;
  std::map<std::string, std::string, std::less<>> bases;  // Type → the type it includes.
  std::vector<std::string> errors;

  void Resolve(TypeRef& t, const std::string& where) {
    if (t.element) return Resolve(*t.element, where);
    if (t.kind != TypeRef::Kind::kStruct) return;
    auto it = types.find(t.struct_name);
    if (it == types.end()) {
      errors.push_back(fmt::format("{}: unknown type {:?}", where, t.struct_name));
      return;
    }
    t.type = &it->second;
  }

  // Copies the fields of `type`'s base (and its base's…) in front of its own.
  void Include(Type& type, int depth) {
    auto base = bases.find(type.name);
    if (base == bases.end() || base->second.empty()) return;
    std::string base_name = std::exchange(base->second, "");
    auto it = types.find(base_name);
    if (it == types.end() || depth > 8) {
      errors.push_back(fmt::format("{}: unknown base type {:?}", type.name, base_name));
      return;
    }
    Include(it->second, depth + 1);
    std::vector<Field> fields = it->second.fields;
    fields.insert(fields.end(), type.fields.begin(), type.fields.end());
    type.fields = std::move(fields);
  }

  // The JSON view of `type`: its fields, inline fields flattened (recursively).
  void Flatten(const Type& type, Type& into, int depth) {
    if (depth > 8) {
      errors.push_back(fmt::format("{}: inline types nested too deep", into.name));
      return;
    }
    for (const auto& f : type.fields) {
      if (f.inlined) {
        if (f.type.type != nullptr) Flatten(*f.type.type, into, depth + 1);
        continue;
      }
      if (!into.index_.emplace(f.name, &f).second) {
        errors.push_back(fmt::format("{}.{} declared twice", into.name, f.name));
        continue;
      }
      into.json_fields.push_back(&f);
    }
  }

  void Parse(std::string_view text) {
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
        if (types.contains(name)) errors.push_back(fmt::format("line {}: {} twice", line_no, name));
        current = &types[name];
        current->name = name;
        current->top_level = kind;
        bases[name] = std::move(base);
        if (kind) {
          current->fields.push_back({"apiVersion", ParseTypeRef("string")});
          current->fields.push_back({"kind", ParseTypeRef("string")});
          current->fields.push_back({"metadata", ParseTypeRef("ObjectMeta"), 1});
        }
        continue;
      }
      // `name [*]type [= number]` or `inline Type [= number]`.
      line = Trim(line);
      int number = 0;
      if (size_t eq = line.find(" = "); eq != std::string_view::npos) {
        std::string_view n = Trim(line.substr(eq + 3));
        if (std::from_chars(n.data(), n.data() + n.size(), number).ec != std::errc() || number <= 0)
          errors.push_back(fmt::format("line {}: bad field number {:?}", line_no, n));
        line = Trim(line.substr(0, eq));
      }
      size_t space = line.find(' ');
      if (!current || space == std::string_view::npos) {
        errors.push_back(fmt::format("line {}: expected `name type`: {:?}", line_no, raw));
        continue;
      }
      Field f;
      f.name = std::string(line.substr(0, space));
      std::string_view type = Trim(line.substr(space + 1));
      if (type.starts_with('*')) {
        f.pointer = true;
        type.remove_prefix(1);
      }
      f.type = ParseTypeRef(type);
      f.number = number;
      if (f.name == "inline") {
        f.inlined = true;
        f.name = std::string(type);
      }
      // A kind may declare its own metadata (a Status' is a ListMeta).
      if (current->top_level && f.name == "metadata" && current->fields.size() > 2 &&
          current->fields[2].name == "metadata") {
        current->fields[2] = std::move(f);
        continue;
      }
      current->fields.push_back(std::move(f));
    }
    for (auto& [name, type] : types) Include(type, 0);
    for (auto& [name, type] : types) {
      for (auto& f : type.fields) Resolve(f.type, fmt::format("{}.{}", name, f.name));
    }
    for (auto& [name, type] : types) Flatten(type, type, 0);
    for (auto& [name, type] : types) {
      std::map<int, std::string> numbers;
      for (const auto& f : type.fields) {
        if (f.number != 0 && !numbers.emplace(f.number, f.name).second) {
          errors.push_back(fmt::format("{}: field number {} used by {} and {}", name, f.number,
                                       numbers[f.number], f.name));
        }
      }
    }
  }
};

namespace {

const Registry& Types() {
  // Never destroyed: threads may check objects while the process exits.
  static const auto& registry = *[] {
    auto* r = new Registry;
    r->Parse(SchemaText());
    return r;
  }();
  return registry;
}

}  // namespace

const Type* FindType(std::string_view name) {
  const auto& types = Types().types;
  auto it = types.find(name);
  return it == types.end() ? nullptr : &it->second;
}

const std::map<std::string, Type, std::less<>>& AllTypes() { return Types().types; }

const std::vector<std::string>& DeclarationErrors() { return Types().errors; }

}  // namespace kiso::api::schema
