#include "api/structural.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "api/validation.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

const json::object* Obj(const json::value* v) {
  return v && v->is_object() ? &v->get_object() : nullptr;
}

const json::value* Key(const json::object& o, std::string_view k) { return o.if_contains(k); }

bool Flag(const json::object& s, std::string_view k) {
  const auto* v = s.if_contains(k);
  return v && v->is_bool() && v->get_bool();
}

std::string_view Str(const json::object& s, std::string_view k) {
  const auto* v = s.if_contains(k);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

std::optional<double> Num(const json::object& s, std::string_view k) {
  const auto* v = s.if_contains(k);
  if (!v) return std::nullopt;
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  if (v->is_double()) return v->get_double();
  return std::nullopt;
}

// Saturated at int64's ends: a schema may say maxLength: 1e52.
std::optional<int64_t> Int(const json::object& s, std::string_view k) {
  auto n = Num(s, k);
  if (!n) return std::nullopt;
  return SaturatedInt64(*n);
}

std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) { return fmt::format("{}[{}]", path, i); }

// What a JSON value is, in OpenAPI's words (a whole double is an integer, as
// Go's decoder of unstructured objects makes it).
std::string_view TypeOf(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return std::trunc(v.get_double()) == v.get_double() && std::isfinite(v.get_double())
                 ? "integer"
                 : "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "null";
}

bool HasType(const json::value& v, std::string_view type) {
  std::string_view actual = TypeOf(v);
  if (type == "number") return actual == "integer" || actual == "number";
  return actual == type;
}

double AsDouble(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return v.get_double();
}

std::string Shown(const json::value& v) {
  if (v.is_string()) return fmt::format("\"{}\"", std::string_view(v.get_string()));
  // A whole double inside int64's range prints as the integer Go decodes it
  // to; one past it stays a float64, printed as Go prints one (1e+52).
  if (v.is_double() && TypeOf(v) == "integer") {
    double d = v.get_double();
    if (SaturatedInt64(d) != std::numeric_limits<int64_t>::max() &&
        SaturatedInt64(d) != std::numeric_limits<int64_t>::min())
      return fmt::format("{}", static_cast<int64_t>(d));
    return fmt::format("{}", d);
  }
  return json::serialize(v);
}

bool Equal(const json::value& a, const json::value& b) {
  bool an = a.is_number(), bn = b.is_number();
  if (an && bn) return AsDouble(a) == AsDouble(b);
  return a == b;
}

size_t Runes(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Compiled patterns, shared by every validation (a few per CRD).
std::shared_ptr<const RE2> Pattern(std::string_view pattern) {
  static std::mutex mu;
  static auto& cache = *new std::map<std::string, std::shared_ptr<const RE2>, std::less<>>();
  std::lock_guard lock(mu);
  auto it = cache.find(pattern);
  if (it != cache.end()) return it->second;
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<const RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (cache.size() >= 4096) cache.clear();  // Bounded: schemas come and go.
  cache.emplace(std::string(pattern), re);
  return re;
}

// ---- CheckStructural ----

std::vector<Cause> ValidateAt(const json::value& schema, const json::value& object,
                              const std::string& path);

const std::set<std::string_view>& Keywords() {
  static const auto& k = *new std::set<std::string_view>{"type",
                                                         "format",
                                                         "title",
                                                         "description",
                                                         "default",
                                                         "enum",
                                                         "nullable",
                                                         "example",
                                                         "externalDocs",
                                                         "properties",
                                                         "additionalProperties",
                                                         "items",
                                                         "required",
                                                         "pattern",
                                                         "minimum",
                                                         "maximum",
                                                         "exclusiveMinimum",
                                                         "exclusiveMaximum",
                                                         "multipleOf",
                                                         "minLength",
                                                         "maxLength",
                                                         "minItems",
                                                         "maxItems",
                                                         "uniqueItems",
                                                         "minProperties",
                                                         "maxProperties",
                                                         "allOf",
                                                         "anyOf",
                                                         "oneOf",
                                                         "not",
                                                         "x-kubernetes-preserve-unknown-fields",
                                                         "x-kubernetes-int-or-string",
                                                         "x-kubernetes-embedded-resource",
                                                         "x-kubernetes-list-type",
                                                         "x-kubernetes-list-map-keys",
                                                         "x-kubernetes-map-type"};
  return k;
}

class StructuralChecker {
 public:
  std::vector<Cause> causes;

  // `field`: a node that declares a field (under properties, items or
  // additionalProperties), which must say its type.
  void Node(const json::value& v, const std::string& path, int depth, bool field, bool root) {
    if (depth > kMaxSchemaDepth) {
      Add("FieldValueForbidden", path,
          fmt::format("Forbidden: the schema nests deeper than {} levels", kMaxSchemaDepth));
      return;
    }
    const json::object* s = Obj(&v);
    if (!s) {
      Add("FieldValueInvalid", path, "Invalid value: must be an object");
      return;
    }
    for (const auto& [k, _] : *s) {
      if (k == "x-kubernetes-validations") {
        // Refused rather than stored and ignored: a rule nobody checks is worse than none.
        Add("FieldValueForbidden", Child(path, k),
            "Forbidden: CEL validation rules are not supported by kiso yet");
      } else if (!Keywords().contains(std::string_view(k))) {
        Add("FieldValueForbidden", Child(path, k),
            "Forbidden: not supported in a structural schema");
      }
    }
    std::string_view type = Str(*s, "type");
    static const std::set<std::string_view> kTypes = {"object",  "array",  "string",
                                                      "integer", "number", "boolean"};
    if (Key(*s, "type") && !kTypes.contains(type)) {
      Add("FieldValueNotSupported", Child(path, "type"),
          fmt::format(
              "Unsupported value: {}: supported values: \"array\", \"boolean\", \"integer\", "
              "\"number\", \"object\", \"string\"",
              Shown(*Key(*s, "type"))));
    }
    bool int_or_string = Flag(*s, "x-kubernetes-int-or-string");
    bool preserve = Flag(*s, "x-kubernetes-preserve-unknown-fields");
    if (root && type != "object") {
      Add("FieldValueInvalid", Child(path, "type"),
          fmt::format("Invalid value: \"{}\": must be object at the root", type));
    }
    if (field && type.empty() && !int_or_string && !preserve) {
      Add("FieldValueRequired", Child(path, "type"),
          "Required value: must not be empty for specified object fields");
    }
    if (int_or_string && !type.empty()) {
      Add("FieldValueInvalid", Child(path, "type"),
          fmt::format("Invalid value: \"{}\": must be empty if x-kubernetes-int-or-string is true",
                      type));
    }
    if (type == "array" && !Key(*s, "items")) {
      Add("FieldValueRequired", Child(path, "items"), "Required value: must be specified");
    }
    if (Key(*s, "properties") && Key(*s, "additionalProperties")) {
      Add("FieldValueForbidden", Child(path, "additionalProperties"),
          "Forbidden: additionalProperties and properties are mutual exclusive");
    }
    if (auto p = Str(*s, "pattern"); Key(*s, "pattern")) {
      auto re = Pattern(p);
      if (!re->ok()) {
        Add("FieldValueInvalid", Child(path, "pattern"),
            fmt::format("Invalid value: \"{}\": must be a valid regular expression, but isn't: {}",
                        p, re->error()));
      }
    }
    if (auto lt = Str(*s, "x-kubernetes-list-type"); !lt.empty()) {
      if (lt != "atomic" && lt != "set" && lt != "map") {
        Add("FieldValueNotSupported", Child(path, "x-kubernetes-list-type"),
            fmt::format("Unsupported value: \"{}\": supported values: \"atomic\", \"map\", \"set\"",
                        lt));
      }
      if (lt == "map") {
        const auto* keys = Key(*s, "x-kubernetes-list-map-keys");
        if (!keys || !keys->is_array() || keys->get_array().empty()) {
          Add("FieldValueRequired", Child(path, "x-kubernetes-list-map-keys"),
              "Required value: must not be empty if x-kubernetes-list-type is map");
        }
      }
    }
    if (const auto* props = Obj(Key(*s, "properties"))) {
      for (const auto& [name, sub] : *props) {
        Node(sub, fmt::format("{}.properties[{}]", path, std::string_view(name)), depth + 1, true,
             false);
      }
    } else if (Key(*s, "properties")) {
      Add("FieldValueInvalid", Child(path, "properties"), "Invalid value: must be an object");
    }
    if (const auto* items = Key(*s, "items")) {
      if (items->is_object()) {
        Node(*items, Child(path, "items"), depth + 1, true, false);
      } else {
        Add("FieldValueForbidden", Child(path, "items"),
            "Forbidden: items must be a schema object and not an array");
      }
    }
    if (const auto* ap = Key(*s, "additionalProperties"); ap && ap->is_object()) {
      Node(*ap, Child(path, "additionalProperties"), depth + 1, true, false);
    }
    for (std::string_view junction : {"allOf", "anyOf", "oneOf"}) {
      if (const auto* list = Key(*s, junction)) {
        if (!list->is_array()) {
          Add("FieldValueInvalid", Child(path, junction), "Invalid value: must be an array");
          continue;
        }
        size_t i = 0;
        for (const auto& sub : list->get_array())
          Node(sub, Index(Child(path, junction), i++), depth + 1, false, false);
      }
    }
    if (const auto* n = Key(*s, "not")) Node(*n, Child(path, "not"), depth + 1, false, false);
    if (const auto* def = Key(*s, "default")) {
      if (root) {
        Add("FieldValueForbidden", Child(path, "default"),
            "Forbidden: must not be set at the root");
      } else {
        for (auto& c : ValidateAt(v, *def, "default"))
          Add(c.reason, Child(path, "default"), c.message);
      }
    }
  }

 private:
  void Add(std::string reason, std::string field, std::string message) {
    if (causes.size() < 100)
      causes.push_back({std::move(reason), std::move(message), std::move(field)});
  }
};

// ---- Prune ----

void PruneValue(const json::object* s, json::value& v, const std::string& path,
                std::vector<std::string>& pruned, int depth);

// Keeps apiVersion, kind and metadata of a (root or embedded) resource.
bool ResourceField(std::string_view k) {
  return k == "apiVersion" || k == "kind" || k == "metadata";
}

void PruneObject(const json::object& s, json::object& o, const std::string& path,
                 std::vector<std::string>& pruned, int depth, bool resource) {
  const json::object* props = Obj(Key(s, "properties"));
  const json::value* additional = Key(s, "additionalProperties");
  bool preserve = Flag(s, "x-kubernetes-preserve-unknown-fields");
  for (auto it = o.begin(); it != o.end();) {
    std::string_view k = it->key();
    std::string field = Child(path, k);
    if (resource && ResourceField(k)) {
      ++it;
      continue;
    }
    const json::value* sub = props ? props->if_contains(k) : nullptr;
    if (sub) {
      PruneValue(Obj(sub), it->value(), field, pruned, depth + 1);
    } else if (additional && additional->is_object()) {
      PruneValue(&additional->get_object(), it->value(), field, pruned, depth + 1);
    } else if (!preserve && !(additional && additional->is_bool() && additional->get_bool())) {
      pruned.push_back(field);
      it = o.stable_erase(it);  // Keeps the others' order.
      continue;
    }
    ++it;
  }
}

void PruneValue(const json::object* s, json::value& v, const std::string& path,
                std::vector<std::string>& pruned, int depth) {
  if (!s || depth > kMaxSchemaDepth + 1) return;
  if (Flag(*s, "x-kubernetes-int-or-string")) return;
  if (v.is_object()) {
    bool has_structure =
        Key(*s, "properties") || Key(*s, "additionalProperties") || Str(*s, "type") == "object";
    if (!has_structure) return;  // Preserved (no type, x-kubernetes-preserve-unknown-fields).
    PruneObject(*s, v.get_object(), path, pruned, depth,
                Flag(*s, "x-kubernetes-embedded-resource"));
  } else if (v.is_array()) {
    const json::object* items = Obj(Key(*s, "items"));
    if (!items) return;
    size_t i = 0;
    for (auto& e : v.get_array()) PruneValue(items, e, Index(path, i++), pruned, depth + 1);
  }
}

// ---- Defaults ----

void DefaultValue(const json::object* s, json::value& v, int depth) {
  if (!s || depth > kMaxSchemaDepth + 1) return;
  if (v.is_object()) {
    auto& o = v.get_object();
    if (const auto* props = Obj(Key(*s, "properties"))) {
      for (const auto& [name, sub] : *props) {
        const json::object* ss = Obj(&sub);
        if (!ss) continue;
        if (!o.contains(name)) {
          if (const auto* def = Key(*ss, "default")) o[name] = *def;
        }
      }
      for (auto& [name, value] : o) {
        if (const auto* sub = props->if_contains(name)) DefaultValue(Obj(sub), value, depth + 1);
      }
    } else if (const auto* ap = Obj(Key(*s, "additionalProperties"))) {
      for (auto& [_, value] : o) DefaultValue(ap, value, depth + 1);
    }
  } else if (v.is_array()) {
    if (const auto* items = Obj(Key(*s, "items"))) {
      for (auto& e : v.get_array()) DefaultValue(items, e, depth + 1);
    }
  }
}

// ---- Validation ----

class Validator {
 public:
  std::vector<Cause> causes;

  void Value(const json::object& s, const json::value& v, const std::string& path, int depth,
             bool root) {
    if (++steps_ > kMaxValidationSteps || depth > kMaxSchemaDepth + 1) {
      if (!exhausted_) {
        exhausted_ = true;
        Add("FieldValueForbidden", path,
            fmt::format("Forbidden: validation needs more than {} steps", kMaxValidationSteps));
      }
      return;
    }
    std::string_view type = Str(s, "type");
    bool int_or_string = Flag(s, "x-kubernetes-int-or-string");
    if (v.is_null()) {
      if (Flag(s, "nullable") || (type.empty() && !int_or_string)) return;
      TypeError(path, int_or_string ? "integer,string" : type, v);
      return;
    }
    if (int_or_string) {
      if (!v.is_string() && TypeOf(v) != "integer") {
        TypeError(path, "integer,string", v);
        return;
      }
    } else if (!type.empty() && !HasType(v, type)) {
      TypeError(path, type, v);
      return;
    }
    if (const auto* e = Key(s, "enum"); e && e->is_array()) {
      bool found = false;
      for (const auto& allowed : e->get_array()) found |= Equal(allowed, v);
      if (!found) {
        std::string list;
        for (const auto& allowed : e->get_array())
          list += fmt::format("{}{}", list.empty() ? "" : ", ", Shown(allowed));
        Add("FieldValueNotSupported", path,
            fmt::format("Unsupported value: {}: supported values: {}", Shown(v), list));
      }
    }
    if (v.is_string()) String(s, v, path);
    if (v.is_number()) Number(s, v, path);
    if (v.is_array()) Array(s, v.get_array(), path, depth);
    if (v.is_object()) Object(s, v.get_object(), path, depth, root);
    Junctions(s, v, path, depth, root);
  }

 private:
  void Add(std::string reason, std::string field, std::string message) {
    if (causes.size() < 100)
      causes.push_back({std::move(reason), std::move(message), std::move(field)});
  }
  void Invalid(const std::string& path, const json::value& v, const std::string& detail) {
    Add("FieldValueInvalid", path,
        fmt::format("Invalid value: {}: {} in body {}", Shown(v), path, detail));
  }
  void TypeError(const std::string& path, std::string_view want, const json::value& v) {
    std::string actual(TypeOf(v));
    Add("FieldValueTypeInvalid", path,
        fmt::format("Invalid value: \"{}\": {} in body must be of type {}: \"{}\"", actual, path,
                    want, actual));
  }

  void String(const json::object& s, const json::value& v, const std::string& path) {
    std::string_view str = v.get_string();
    size_t n = Runes(str);
    if (auto max = Int(s, "maxLength"); max && static_cast<int64_t>(n) > *max) {
      Add("FieldValueTooLong", path, fmt::format("Too long: may not be more than {} bytes", *max));
    }
    if (auto min = Int(s, "minLength"); min && static_cast<int64_t>(n) < *min) {
      Invalid(path, v, fmt::format("should be at least {} chars long", *min));
    }
    if (Key(s, "pattern")) {
      auto re = Pattern(Str(s, "pattern"));
      if (re->ok() && !RE2::PartialMatch(re2::StringPiece(str.data(), str.size()), *re))
        Invalid(path, v, fmt::format("should match '{}'", Str(s, "pattern")));
    }
  }

  void Number(const json::object& s, const json::value& v, const std::string& path) {
    double x = AsDouble(v);
    if (auto max = Num(s, "maximum")) {
      if (Flag(s, "exclusiveMaximum") ? x >= *max : x > *max) {
        Invalid(path, v,
                fmt::format("should be less than {}{}",
                            Flag(s, "exclusiveMaximum") ? "" : "or equal to ",
                            Shown(*Key(s, "maximum"))));
      }
    }
    if (auto min = Num(s, "minimum")) {
      if (Flag(s, "exclusiveMinimum") ? x <= *min : x < *min) {
        Invalid(path, v,
                fmt::format("should be greater than {}{}",
                            Flag(s, "exclusiveMinimum") ? "" : "or equal to ",
                            Shown(*Key(s, "minimum"))));
      }
    }
    if (auto m = Num(s, "multipleOf"); m && *m > 0) {
      double q = x / *m;
      if (std::abs(q - std::round(q)) > 1e-9)
        Invalid(path, v, fmt::format("should be a multiple of {}", Shown(*Key(s, "multipleOf"))));
    }
  }

  void Array(const json::object& s, const json::array& a, const std::string& path, int depth) {
    if (auto max = Int(s, "maxItems"); max && static_cast<int64_t>(a.size()) > *max) {
      Add("FieldValueTooMany", path,
          fmt::format("Too many: {}: must have at most {} items", a.size(), *max));
    }
    if (auto min = Int(s, "minItems"); min && static_cast<int64_t>(a.size()) < *min) {
      Invalid(path, json::value(a.size()), fmt::format("should have at least {} items", *min));
    }
    std::string_view list_type = Str(s, "x-kubernetes-list-type");
    if (list_type == "set" || Flag(s, "uniqueItems")) {
      std::set<std::string> seen;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!seen.insert(json::serialize(a[i])).second) {
          Add("FieldValueDuplicate", Index(path, i),
              fmt::format("Duplicate value: {}", Shown(a[i])));
        }
      }
    } else if (list_type == "map") {
      std::set<std::string> seen;
      const auto* keys = Key(s, "x-kubernetes-list-map-keys");
      for (size_t i = 0; keys && keys->is_array() && i < a.size(); ++i) {
        if (!a[i].is_object()) continue;
        json::object key;
        for (const auto& k : keys->get_array()) {
          if (!k.is_string()) continue;
          const auto* kv = a[i].get_object().if_contains(k.get_string());
          key[k.get_string()] = kv ? *kv : nullptr;
        }
        if (!seen.insert(json::serialize(key)).second) {
          Add("FieldValueDuplicate", Index(path, i),
              fmt::format("Duplicate value: {}", json::serialize(key)));
        }
      }
    }
    if (const auto* items = Obj(Key(s, "items"))) {
      for (size_t i = 0; i < a.size(); ++i) Value(*items, a[i], Index(path, i), depth + 1, false);
    }
  }

  void Object(const json::object& s, const json::object& o, const std::string& path, int depth,
              bool root) {
    if (const auto* req = Key(s, "required"); req && req->is_array()) {
      for (const auto& r : req->get_array()) {
        if (r.is_string() && !o.contains(r.get_string()))
          Add("FieldValueRequired", Child(path, r.get_string()), "Required value");
      }
    }
    if (auto max = Int(s, "maxProperties"); max && static_cast<int64_t>(o.size()) > *max) {
      Add("FieldValueTooMany", path,
          fmt::format("Too many: {}: must have at most {} items", o.size(), *max));
    }
    if (auto min = Int(s, "minProperties"); min && static_cast<int64_t>(o.size()) < *min) {
      Invalid(path, json::value(o.size()), fmt::format("should have at least {} properties", *min));
    }
    if (Flag(s, "x-kubernetes-embedded-resource")) {
      for (std::string_view k : {"apiVersion", "kind"}) {
        const auto* f = o.if_contains(k);
        if (!f || !f->is_string() || f->get_string().empty())
          Add("FieldValueRequired", Child(path, k), "Required value");
      }
    }
    const json::object* props = Obj(Key(s, "properties"));
    const json::object* additional = Obj(Key(s, "additionalProperties"));
    for (const auto& [k, value] : o) {
      // The API server validates a resource's own identity and metadata.
      if ((root || Flag(s, "x-kubernetes-embedded-resource")) && ResourceField(k)) continue;
      const json::value* sub = props ? props->if_contains(k) : nullptr;
      if (sub && sub->is_object()) {
        Value(sub->get_object(), value, Child(path, k), depth + 1, false);
      } else if (!sub && additional) {
        Value(*additional, value, Child(path, k), depth + 1, false);
      }
    }
  }

  void Junctions(const json::object& s, const json::value& v, const std::string& path, int depth,
                 bool root) {
    auto passes = [&](const json::value& sub) {
      if (!sub.is_object()) return true;
      Validator inner;
      inner.steps_ = steps_;
      inner.Value(sub.get_object(), v, path, depth + 1, root);
      steps_ = inner.steps_;
      if (inner.exhausted_) exhausted_ = true;
      return inner.causes.empty();
    };
    if (const auto* all = Key(s, "allOf"); all && all->is_array()) {
      for (const auto& sub : all->get_array()) {
        if (sub.is_object()) Value(sub.get_object(), v, path, depth + 1, root);
      }
    }
    if (const auto* any = Key(s, "anyOf"); any && any->is_array() && !any->get_array().empty()) {
      bool ok = false;
      for (const auto& sub : any->get_array()) {
        if (passes(sub)) {
          ok = true;
          break;
        }
      }
      if (!ok) Invalid(path, v, "must validate at least one schema (anyOf)");
    }
    if (const auto* one = Key(s, "oneOf"); one && one->is_array() && !one->get_array().empty()) {
      int n = 0;
      for (const auto& sub : one->get_array()) n += passes(sub) ? 1 : 0;
      if (n != 1) Invalid(path, v, "must validate one and only one schema (oneOf)");
    }
    if (const auto* n = Key(s, "not"); n && n->is_object() && passes(*n)) {
      Invalid(path, v, "must not validate the schema (not)");
    }
  }

  long steps_ = 0;
  bool exhausted_ = false;

 public:
  bool exhausted() const { return exhausted_; }
};

}  // namespace

namespace {

std::vector<Cause> ValidateAt(const json::value& schema, const json::value& object,
                              const std::string& path) {
  Validator v;
  if (const json::object* s = Obj(&schema)) v.Value(*s, object, path, 0, /*root=*/path.empty());
  if (v.exhausted()) {
    // Whatever else was found is partial: the limit is the answer.
    return {{"FieldValueForbidden",
             fmt::format("Forbidden: validation needs more than {} steps", kMaxValidationSteps),
             path}};
  }
  return std::move(v.causes);
}

}  // namespace

std::vector<Cause> CheckStructural(const json::value& schema, const std::string& path) {
  StructuralChecker c;
  c.Node(schema, path, 0, false, true);
  return std::move(c.causes);
}

std::vector<std::string> Prune(const json::value& schema, json::value& object) {
  std::vector<std::string> pruned;
  const json::object* s = Obj(&schema);
  if (!s || !object.is_object()) return pruned;
  PruneObject(*s, object.get_object(), "", pruned, 0, /*resource=*/true);
  return pruned;
}

void ApplySchemaDefaults(const json::value& schema, json::value& object) {
  DefaultValue(Obj(&schema), object, 0);
}

std::vector<Cause> ValidateSchema(const json::value& schema, const json::value& object) {
  return ValidateAt(schema, object, "");
}

}  // namespace kiso::api
