#include "api/protobuf.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <map>
#include <memory>

#include "api/object.h"
#include "api/resources.h"
#include "api/schema_model.h"
#include "common/base64.h"
#include "common/clock.h"

namespace kiso::api {

namespace json = boost::json;
namespace pb = google::protobuf;
using schema::Field;
using schema::Type;
using schema::TypeRef;
using K = schema::TypeRef::Kind;

namespace {

bool ValidUtf8(std::string_view s);

constexpr std::string_view kMagic{"k8s\0", 4};
constexpr std::string_view kTypesPackage = "kiso.k8s";
constexpr std::string_view kRuntimePackage = "kiso.runtime";
// What decoding one body may cost, in the scan's units (about bytes of
// memory): a message costs its fixed part and a slot per declared field.
constexpr size_t kDecodeBudget = size_t{64} << 20;
// RawExtensions holding protobuf objects holding RawExtensions…
constexpr int kMaxEmbedding = 4;

// ---- The messages, built once from the declarations ----

std::string ProtoName(std::string_view json_name) {
  std::string out;
  for (char c : json_name) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(0, "f_");
  return out;
}

// The name protobuf requires of a map field's entry type: the field's name in
// CamelCase, then "Entry".
std::string EntryName(const std::string& field) {
  std::string out;
  bool upper = true;
  for (char c : field) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out + "Entry";
}

class Pool {
 public:
  Pool() { Build(); }

  // The message of a declared type (of a list of it, with `list`).
  const pb::Descriptor* Message(std::string_view type, bool list = false) const {
    auto it = messages_.find(ProtoName(type) + (list ? "List" : ""));
    return it == messages_.end() ? nullptr : it->second;
  }
  const pb::Descriptor* Runtime(std::string_view name) const {
    return pool_.FindMessageTypeByName(fmt::format("{}.{}", kRuntimePackage, name));
  }
  // A fresh message of `d`; owned by the caller.
  std::unique_ptr<pb::Message> New(const pb::Descriptor* d) const {
    std::lock_guard lock(factory_mu_);  // GetPrototype builds prototypes lazily.
    return std::unique_ptr<pb::Message>(factory_.GetPrototype(d)->New());
  }
  // The protobuf field of a declared field, by number.
  static const pb::FieldDescriptor* FieldOf(const pb::Descriptor* d, const Field& f) {
    return f.number == 0 ? nullptr : d->FindFieldByNumber(f.number);
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  // Sets `out` to carry a value of type `t` (scalar types, or a message's name).
  // False when `t` has no protobuf form.
  bool SetType(const TypeRef& t, pb::FieldDescriptorProto* out, pb::DescriptorProto* owner,
               const std::string& field_name) {
    using FD = pb::FieldDescriptorProto;
    auto message = [&](std::string_view package, std::string_view name) {
      out->set_type(FD::TYPE_MESSAGE);
      out->set_type_name(fmt::format(".{}.{}", package, name));
    };
    switch (t.kind) {
      case K::kString:
      case K::kEnum:
        out->set_type(FD::TYPE_STRING);
        return true;
      case K::kInt32:
        out->set_type(FD::TYPE_INT32);
        return true;
      case K::kInt64:
        out->set_type(FD::TYPE_INT64);
        return true;
      case K::kBool:
        out->set_type(FD::TYPE_BOOL);
        return true;
      case K::kFloat:
        out->set_type(FD::TYPE_DOUBLE);
        return true;
      case K::kBytes:
        out->set_type(FD::TYPE_BYTES);
        return true;
      case K::kIntOrString:
        message(kRuntimePackage, "IntOrString");
        return true;
      case K::kQuantity:
        message(kRuntimePackage, "Quantity");
        return true;
      case K::kTime:
      case K::kMicroTime:
        message(kRuntimePackage, "Time");
        return true;
      case K::kDuration:
        message(kRuntimePackage, "Duration");
        return true;
      case K::kRawJson:
        message(kRuntimePackage, "RawExtension");
        return true;
      case K::kStruct:
        message(kTypesPackage, ProtoName(t.struct_name));
        return true;
      case K::kList: {
        if (t.element->kind == K::kList || t.element->kind == K::kMap) return false;
        out->set_label(FD::LABEL_REPEATED);
        return SetType(*t.element, out, owner, field_name);
      }
      case K::kMap: {
        // map<string, V>: a nested entry type; a list value is wrapped in a
        // message of its items (as Go's ExtraValue is).
        pb::DescriptorProto* entry = owner->add_nested_type();
        entry->set_name(EntryName(field_name));
        entry->mutable_options()->set_map_entry(true);
        auto* key = entry->add_field();
        key->set_name("key");
        key->set_number(1);
        key->set_label(FD::LABEL_OPTIONAL);
        key->set_type(FD::TYPE_STRING);
        auto* value = entry->add_field();
        value->set_name("value");
        value->set_number(2);
        value->set_label(FD::LABEL_OPTIONAL);
        if (t.element->kind == K::kList) {
          if (t.element->element->kind != K::kString) return false;
          message(kRuntimePackage, "StringList");
          value->set_type(FD::TYPE_MESSAGE);
          value->set_type_name(fmt::format(".{}.StringList", kRuntimePackage));
        } else if (t.element->kind == K::kMap || !SetType(*t.element, value, entry, "value")) {
          return false;
        }
        out->set_label(FD::LABEL_REPEATED);
        out->set_type(FD::TYPE_MESSAGE);
        out->set_type_name(
            fmt::format(".{}.{}.{}", kTypesPackage, owner->name(), EntryName(field_name)));
        return true;
      }
      case K::kAny:
        return false;
    }
    return false;
  }

  void AddRuntime(pb::FileDescriptorProto& file) {
    using FD = pb::FieldDescriptorProto;
    auto message =
        [&](const char* name,
            const std::vector<std::tuple<const char*, int, FD::Type, FD::Label, std::string>>&
                fields) {
          auto* m = file.add_message_type();
          m->set_name(name);
          for (const auto& [fname, number, type, label, type_name] : fields) {
            auto* f = m->add_field();
            f->set_name(fname);
            f->set_number(number);
            f->set_type(type);
            f->set_label(label);
            if (!type_name.empty()) f->set_type_name(type_name);
          }
        };
    const auto opt = FD::LABEL_OPTIONAL;
    std::string p = fmt::format(".{}.", kRuntimePackage);
    message("TypeMeta",
            {{"apiVersion", 1, FD::TYPE_STRING, opt, ""}, {"kind", 2, FD::TYPE_STRING, opt, ""}});
    message("Unknown", {{"typeMeta", 1, FD::TYPE_MESSAGE, opt, p + "TypeMeta"},
                        {"raw", 2, FD::TYPE_BYTES, opt, ""},
                        {"contentEncoding", 3, FD::TYPE_STRING, opt, ""},
                        {"contentType", 4, FD::TYPE_STRING, opt, ""}});
    message("RawExtension", {{"raw", 1, FD::TYPE_BYTES, opt, ""}});
    message("Time",
            {{"seconds", 1, FD::TYPE_INT64, opt, ""}, {"nanos", 2, FD::TYPE_INT32, opt, ""}});
    message("Duration", {{"duration", 1, FD::TYPE_INT64, opt, ""}});
    message("Quantity", {{"string", 1, FD::TYPE_STRING, opt, ""}});
    message("IntOrString", {{"type", 1, FD::TYPE_INT64, opt, ""},
                            {"intVal", 2, FD::TYPE_INT32, opt, ""},
                            {"strVal", 3, FD::TYPE_STRING, opt, ""}});
    message("StringList", {{"items", 1, FD::TYPE_STRING, FD::LABEL_REPEATED, ""}});
    message("WatchEvent", {{"type", 1, FD::TYPE_STRING, opt, ""},
                           {"object", 2, FD::TYPE_MESSAGE, opt, p + "RawExtension"}});
  }

  void Build() {
    if (!schema::DeclarationErrors().empty()) {
      errors_.emplace_back("the type declarations do not parse");
      return;
    }
    pb::FileDescriptorProto runtime;
    runtime.set_name("kiso/runtime.proto");
    runtime.set_package(std::string(kRuntimePackage));
    runtime.set_syntax("proto2");
    AddRuntime(runtime);
    pb::FileDescriptorProto types;
    types.set_name("kiso/types.proto");
    types.set_package(std::string(kTypesPackage));
    types.set_syntax("proto2");
    types.add_dependency(runtime.name());
    for (const auto& [name, type] : schema::AllTypes()) {
      auto* m = types.add_message_type();
      m->set_name(ProtoName(name));
      for (const auto& f : type.fields) {
        if (f.number == 0) continue;
        auto* field = m->add_field();
        field->set_name(ProtoName(f.inlined ? "inline_" + f.name : f.name));
        field->set_json_name(f.name);
        field->set_number(f.number);
        field->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
        if (!SetType(f.type, field, m, field->name())) {
          errors_.push_back(fmt::format("{}.{} = {}: type {} has no protobuf form", name, f.name,
                                        f.number, f.type.GoName()));
          m->mutable_field()->RemoveLast();
        }
      }
      if (type.top_level && name != "Status") {
        auto* list = types.add_message_type();
        list->set_name(ProtoName(name) + "List");
        auto* meta = list->add_field();
        meta->set_name("metadata");
        meta->set_number(1);
        meta->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
        meta->set_type(pb::FieldDescriptorProto::TYPE_MESSAGE);
        meta->set_type_name(fmt::format(".{}.ListMeta", kTypesPackage));
        auto* items = list->add_field();
        items->set_name("items");
        items->set_number(2);
        items->set_label(pb::FieldDescriptorProto::LABEL_REPEATED);
        items->set_type(pb::FieldDescriptorProto::TYPE_MESSAGE);
        items->set_type_name(fmt::format(".{}.{}", kTypesPackage, ProtoName(name)));
      }
    }
    struct Collector : pb::DescriptorPool::ErrorCollector {
      std::vector<std::string>* errors;
      void AddError(const std::string& file, const std::string& element, const pb::Message*,
                    ErrorLocation, const std::string& message) override {
        errors->push_back(fmt::format("{}: {}: {}", file, element, message));
      }
    } collector;
    collector.errors = &errors_;
    if (!pool_.BuildFileCollectingErrors(runtime, &collector)) return;
    const pb::FileDescriptor* file = pool_.BuildFileCollectingErrors(types, &collector);
    if (file == nullptr) return;
    for (int i = 0; i < file->message_type_count(); ++i) {
      messages_.emplace(file->message_type(i)->name(), file->message_type(i));
    }
  }

  pb::DescriptorPool pool_;
  mutable std::mutex factory_mu_;
  mutable pb::DynamicMessageFactory factory_{&pool_};
  std::map<std::string, const pb::Descriptor*, std::less<>> messages_;
  std::vector<std::string> errors_;
};

const Pool& ThePool() {
  static const auto& pool = *new Pool();  // Never destroyed: used by request threads.
  return pool;
}

// ---- The cost of a body, before anything is decoded ----

// Walks the wire format along the declared messages, adding what each
// message and field would cost decoded. False when the body is malformed,
// nested too deep, or past the budget.
bool Scan(pb::io::CodedInputStream& in, const pb::Descriptor* d, int depth, size_t& cost) {
  using WFL = pb::internal::WireFormatLite;
  if (depth > static_cast<int>(kMaxDepth)) return false;
  cost += 64 + 16 * static_cast<size_t>(d->field_count());
  for (;;) {
    if (cost > kDecodeBudget) return false;
    uint32_t tag = in.ReadTag();
    if (tag == 0) return true;
    const pb::FieldDescriptor* f = d->FindFieldByNumber(WFL::GetTagFieldNumber(tag));
    if (f != nullptr && f->type() == pb::FieldDescriptor::TYPE_MESSAGE &&
        WFL::GetTagWireType(tag) == WFL::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t length = 0;
      if (!in.ReadVarint32(&length)) return false;
      auto limit = in.PushLimit(static_cast<int>(length));
      if (!Scan(in, f->message_type(), depth + 1, cost) || !in.ConsumedEntireMessage())
        return false;
      in.PopLimit(limit);
    } else {
      cost += 16;
      if (!WFL::SkipField(&in, tag)) return false;
    }
  }
}

// ---- Protobuf → JSON ----

class Decoder {
 public:
  explicit Decoder(int embedding) : embedding_(embedding) {}

  // The first problem found (the message kube-apiserver's decoder would give, or close to it).
  const std::string& error() const { return error_; }

  json::object Message(const pb::Message& m, const Type& type) {
    json::object out;
    Fill(m, type, out);
    return out;
  }

 private:
  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  std::string Path() const {
    std::string out;
    for (const auto& p : path_) {
      if (!out.empty() && p[0] != '[') out += '.';
      out += p;
    }
    return out.empty() ? "the object" : out;
  }

  void CheckUnknown(const pb::Message& m, const Type& type) {
    const auto& unknown = m.GetReflection()->GetUnknownFields(m);
    if (unknown.field_count() == 0) return;
    int number = unknown.field(0).number();
    std::string declared;
    for (const auto& f : type.fields) {
      if (f.number == number) declared = f.name;
    }
    if (declared.empty()) {
      Fail(fmt::format("{}: field number {} of {} is not a field kiso knows", Path(), number,
                       type.name));
    } else {
      Fail(fmt::format("{}: field {} ({} = {}) has a wire type its declaration does not allow",
                       Path(), declared, type.name, number));
    }
  }

  void Fill(const pb::Message& m, const Type& type, json::object& out) {
    CheckUnknown(m, type);
    const pb::Reflection* r = m.GetReflection();
    const pb::Descriptor* d = m.GetDescriptor();
    for (const auto& f : type.fields) {
      const pb::FieldDescriptor* fd = Pool::FieldOf(d, f);
      if (fd == nullptr) continue;
      if (f.inlined) {
        if (r->HasField(m, fd) && f.type.type != nullptr)
          Fill(r->GetMessage(m, fd), *f.type.type, out);
        continue;
      }
      path_.push_back(f.name);
      if (fd->is_repeated()) {
        if (r->FieldSize(m, fd) > 0) out[f.name] = Repeated(m, fd, f.type);
      } else if (r->HasField(m, fd)) {
        json::value v = Singular(m, fd, f.type, f.pointer);
        if (!v.is_null() || f.type.kind == K::kRawJson) out[f.name] = std::move(v);
      }
      path_.pop_back();
    }
  }

  // A singular field's value; null for a zero that JSON would leave out.
  json::value Singular(const pb::Message& m, const pb::FieldDescriptor* fd, const TypeRef& t,
                       bool pointer) {
    const pb::Reflection* r = m.GetReflection();
    switch (fd->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        std::string s = r->GetString(m, fd);
        if (s.empty() && !pointer) return nullptr;
        if (t.kind == K::kBytes) return json::value(Base64Encode(s));
        return json::value(s);
      }
      case pb::FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = r->GetInt32(m, fd);
        return v == 0 && !pointer ? json::value(nullptr) : json::value(v);
      }
      case pb::FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = r->GetInt64(m, fd);
        return v == 0 && !pointer ? json::value(nullptr) : json::value(v);
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL: {
        bool v = r->GetBool(m, fd);
        return !v && !pointer ? json::value(nullptr) : json::value(v);
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
        double v = r->GetDouble(m, fd);
        return v == 0 && !pointer ? json::value(nullptr) : json::value(v);
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        return MessageValue(r->GetMessage(m, fd), t);
      default:
        Fail(fmt::format("{}: a field type kiso does not decode", Path()));
        return nullptr;
    }
  }

  json::value Repeated(const pb::Message& m, const pb::FieldDescriptor* fd, const TypeRef& t) {
    const pb::Reflection* r = m.GetReflection();
    int n = r->FieldSize(m, fd);
    if (t.kind == K::kMap) {
      json::object out;
      for (int i = 0; i < n; ++i) {
        const pb::Message& entry = r->GetRepeatedMessage(m, fd, i);
        const pb::Descriptor* ed = entry.GetDescriptor();
        const pb::Reflection* er = entry.GetReflection();
        std::string key = er->GetString(entry, ed->field(0));
        path_.push_back("[" + key + "]");
        const pb::FieldDescriptor* vf = ed->field(1);
        json::value v;
        if (t.element->kind == K::kList) {
          json::array items;
          const pb::Message& list = er->GetMessage(entry, vf);
          const pb::FieldDescriptor* lf = list.GetDescriptor()->field(0);
          for (int j = 0; j < list.GetReflection()->FieldSize(list, lf); ++j)
            items.emplace_back(list.GetReflection()->GetRepeatedString(list, lf, j));
          v = std::move(items);
        } else {
          v = Singular(entry, vf, *t.element, /*pointer=*/true);
        }
        out[key] = std::move(v);
        path_.pop_back();
      }
      return out;
    }
    json::array out;
    out.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      path_.push_back(fmt::format("[{}]", i));
      switch (fd->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_STRING: {
          std::string s = r->GetRepeatedString(m, fd, i);
          out.emplace_back(t.element->kind == K::kBytes ? Base64Encode(s) : s);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_INT32:
          out.emplace_back(r->GetRepeatedInt32(m, fd, i));
          break;
        case pb::FieldDescriptor::CPPTYPE_INT64:
          out.emplace_back(r->GetRepeatedInt64(m, fd, i));
          break;
        case pb::FieldDescriptor::CPPTYPE_BOOL:
          out.emplace_back(r->GetRepeatedBool(m, fd, i));
          break;
        case pb::FieldDescriptor::CPPTYPE_DOUBLE:
          out.emplace_back(r->GetRepeatedDouble(m, fd, i));
          break;
        case pb::FieldDescriptor::CPPTYPE_MESSAGE:
          out.push_back(MessageValue(r->GetRepeatedMessage(m, fd, i), *t.element));
          break;
        default:
          Fail(fmt::format("{}: a field type kiso does not decode", Path()));
      }
      path_.pop_back();
    }
    return out;
  }

  json::value MessageValue(const pb::Message& m, const TypeRef& t) {
    const pb::Reflection* r = m.GetReflection();
    const pb::Descriptor* d = m.GetDescriptor();
    if (r->GetUnknownFields(m).field_count() > 0 && t.kind != K::kStruct) {
      Fail(fmt::format("{}: field number {} of {} is not a field kiso knows", Path(),
                       r->GetUnknownFields(m).field(0).number(), d->name()));
    }
    switch (t.kind) {
      case K::kStruct:
        return Message(m, *t.type);
      case K::kTime:
      case K::kMicroTime: {
        WallTime w{r->GetInt64(m, d->field(0)), r->GetInt32(m, d->field(1))};
        if (w.seconds == 0 && w.nanos == 0) return nullptr;  // Go's zero time: null.
        if (w.nanos < 0 || w.nanos >= 1'000'000'000) {
          Fail(fmt::format("{}: nanoseconds out of range: {}", Path(), w.nanos));
          return nullptr;
        }
        return json::value(FormatRfc3339(w, t.kind == K::kMicroTime ? 6 : 0));
      }
      case K::kDuration:
        return json::value(FormatGoDuration(r->GetInt64(m, d->field(0))));
      case K::kQuantity:
        return json::value(r->GetString(m, d->field(0)));
      case K::kIntOrString:
        if (r->GetInt64(m, d->field(0)) == 1) return json::value(r->GetString(m, d->field(2)));
        return json::value(r->GetInt32(m, d->field(1)));
      case K::kRawJson: {
        std::string raw = r->GetString(m, d->field(0));
        if (raw.empty()) return nullptr;
        if (std::string_view(raw).starts_with(kMagic)) {
          if (embedding_ >= kMaxEmbedding) {
            Fail(fmt::format("{}: objects embedded more than {} deep", Path(), kMaxEmbedding));
            return nullptr;
          }
          auto inner = Decode(raw, embedding_ + 1);
          if (!inner.ok()) {
            Fail(fmt::format("{}: {}", Path(), inner.error().message));
            return nullptr;
          }
          return std::move(*inner);
        }
        auto v = ParseJson(raw);
        if (!v.ok()) {
          Fail(fmt::format("{}: {}", Path(), v.status().message()));
          return nullptr;
        }
        return std::move(*v);
      }
      default:
        Fail(fmt::format("{}: a field type kiso does not decode", Path()));
        return nullptr;
    }
  }

 public:
  static ApiOr<json::value> Decode(std::string_view body, int embedding);

 private:
  int embedding_;
  std::string error_;
  std::vector<std::string> path_;
};

// The declared type of `kind` at `api_version` (the kind's own, or the
// version's where they differ), and whether it names a list of it ("PodList").
const Type* KindType(std::string_view api_version, std::string_view kind, bool* list) {
  auto declared = [&](std::string_view k) -> const Type* {
    const ResourceType* served = FindKind(api_version, k);
    const Type* t = schema::FindType(served != nullptr ? served->Schema() : k);
    return t != nullptr && t->top_level ? t : nullptr;
  };
  *list = false;
  if (const Type* t = declared(kind)) return t;
  if (kind.ends_with("List")) {
    if (const Type* t = declared(kind.substr(0, kind.size() - 4))) {
      *list = true;
      return t;
    }
  }
  return nullptr;
}

ApiOr<json::value> Decoder::Decode(std::string_view body, int embedding) {
  const Pool& pool = ThePool();
  if (!pool.errors().empty())
    return UnsupportedMediaType("kiso cannot decode protobuf: its message declarations are broken");
  if (!body.starts_with(kMagic)) {
    return BadRequest(
        "provided object is not a protobuf body: it does not start with the \"k8s\\x00\" prefix");
  }
  body.remove_prefix(kMagic.size());
  auto envelope = pool.New(pool.Runtime("Unknown"));
  if (!envelope->ParseFromArray(body.data(), static_cast<int>(body.size())))
    return BadRequest("provided object is not a valid runtime.Unknown envelope");
  const pb::Reflection* er = envelope->GetReflection();
  const pb::Descriptor* ed = envelope->GetDescriptor();
  if (er->GetUnknownFields(*envelope).field_count() > 0) {
    return BadRequest(fmt::format("runtime.Unknown: field number {} is not a field kiso knows",
                                  er->GetUnknownFields(*envelope).field(0).number()));
  }
  const pb::Message& type_meta = er->GetMessage(*envelope, ed->FindFieldByName("typeMeta"));
  const pb::Descriptor* td = type_meta.GetDescriptor();
  std::string api_version = type_meta.GetReflection()->GetString(type_meta, td->field(0));
  std::string kind = type_meta.GetReflection()->GetString(type_meta, td->field(1));
  std::string encoding = er->GetString(*envelope, ed->FindFieldByName("contentEncoding"));
  std::string content_type = er->GetString(*envelope, ed->FindFieldByName("contentType"));
  for (const std::string* text : {&api_version, &kind, &encoding, &content_type}) {
    if (!ValidUtf8(*text)) return BadRequest("the protobuf body's type meta is not UTF-8");
  }
  if (!encoding.empty())
    return UnsupportedMediaType(fmt::format("content encoding {:?} is not supported", encoding));
  if (!content_type.empty() && content_type != kProtobufMediaType) {
    return UnsupportedMediaType(
        fmt::format("a runtime.Unknown of content type {:?} is not supported", content_type));
  }
  if (kind.empty()) return BadRequest("Object 'Kind' is missing in the protobuf body");
  bool list = false;
  const Type* type = KindType(api_version, kind, &list);
  const pb::Descriptor* d = type ? pool.Message(type->name, list) : nullptr;
  if (d == nullptr) {
    return BadRequest(
        fmt::format("no kind {:?} is registered for version {:?}", kind, api_version));
  }
  std::string raw = er->GetString(*envelope, ed->FindFieldByName("raw"));
  size_t cost = 0;
  {
    pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(raw.data()),
                                static_cast<int>(raw.size()));
    if (!Scan(in, d, 0, cost) || !in.ConsumedEntireMessage()) {
      if (cost > kDecodeBudget) {
        return RequestEntityTooLarge(fmt::format(
            "the protobuf body would decode to more than {} MiB of objects", kDecodeBudget >> 20));
      }
      return BadRequest(fmt::format(
          "{}: the protobuf body is malformed or nested more than {} deep", kind, kMaxDepth));
    }
  }
  auto message = pool.New(d);
  if (!message->ParseFromString(raw))
    return BadRequest(fmt::format("{}: the protobuf body is malformed", kind));
  Decoder decoder(embedding);
  json::object out;
  out["apiVersion"] = api_version;
  out["kind"] = kind;
  if (list) {
    const pb::Reflection* r = message->GetReflection();
    const Type* list_meta = schema::FindType("ListMeta");
    if (r->HasField(*message, d->field(0)) && list_meta != nullptr)
      out["metadata"] = decoder.Message(r->GetMessage(*message, d->field(0)), *list_meta);
    json::array items;
    for (int i = 0; i < r->FieldSize(*message, d->field(1)); ++i)
      items.emplace_back(decoder.Message(r->GetRepeatedMessage(*message, d->field(1), i), *type));
    out["items"] = std::move(items);
  } else {
    for (auto& [key, value] : decoder.Message(*message, *type)) out[key] = std::move(value);
  }
  if (!decoder.error().empty()) {
    return BadRequest(fmt::format("{} in version {:?} cannot be decoded from protobuf: {}", kind,
                                  api_version, decoder.error()));
  }
  return json::value(std::move(out));
}

// ---- JSON → protobuf ----

class Encoder {
 public:
  const std::string& error() const { return error_; }

  void Message(const json::object& obj, const Type& type, pb::Message& m) {
    const pb::Descriptor* d = m.GetDescriptor();
    const pb::Reflection* r = m.GetReflection();
    for (const auto& f : type.fields) {
      if (f.inlined) {
        const pb::FieldDescriptor* fd = Pool::FieldOf(d, f);
        if (fd == nullptr || f.type.type == nullptr) continue;
        bool any = false;
        for (const Field* inner : f.type.type->json_fields) any |= obj.contains(inner->name);
        if (any) Message(obj, *f.type.type, *r->MutableMessage(&m, fd));
        continue;
      }
      const json::value* v = obj.if_contains(f.name);
      if (v == nullptr || v->is_null()) continue;
      const pb::FieldDescriptor* fd = Pool::FieldOf(d, f);
      if (fd == nullptr) {
        if (f.name == "apiVersion" || f.name == "kind" || f.number == 0) continue;
        Fail(fmt::format("{}.{} has no protobuf form", type.name, f.name));
        continue;
      }
      if (f.type.kind == K::kMap) {
        Map(*v, f, fd, m);
      } else if (fd->is_repeated()) {
        const auto* arr = v->if_array();
        if (arr == nullptr) {
          Fail(fmt::format("{}.{} is not a list", type.name, f.name));
          continue;
        }
        for (const auto& e : *arr) Add(e, *f.type.element, fd, m);
      } else {
        Set(*v, f.type, fd, m);
      }
    }
  }

 private:
  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  static std::optional<int64_t> Int(const json::value& v) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= INT64_MAX) return static_cast<int64_t>(v.get_uint64());
    if (!v.is_double()) return std::nullopt;
    // Only a whole double inside int64's range converts (past it, the cast is
    // undefined behaviour); 2^63 is the first double beyond INT64_MAX.
    double d = v.get_double();
    constexpr double kTop = 9223372036854775808.0;
    if (!(d >= -kTop && d < kTop) || std::trunc(d) != d) return std::nullopt;
    return static_cast<int64_t>(d);
  }

  // Fills a message-typed value (struct or builtin) from JSON.
  void FillMessage(const json::value& v, const TypeRef& t, pb::Message& m) {
    const pb::Descriptor* d = m.GetDescriptor();
    const pb::Reflection* r = m.GetReflection();
    switch (t.kind) {
      case K::kStruct:
        if (!v.is_object()) return Fail(fmt::format("a {} is not an object", t.struct_name));
        return Message(v.get_object(), *t.type, m);
      case K::kTime:
      case K::kMicroTime: {
        auto w = v.is_string() ? ParseRfc3339(v.get_string()) : std::nullopt;
        if (!w) return Fail("a time is not RFC 3339");
        r->SetInt64(&m, d->field(0), w->seconds);
        if (w->nanos != 0 || t.kind == K::kMicroTime) r->SetInt32(&m, d->field(1), w->nanos);
        return;
      }
      case K::kDuration: {
        auto ns = v.is_string() ? ParseGoDuration(v.get_string()) : std::nullopt;
        if (!ns) return Fail("a duration is not Go's (1h2m3.5s)");
        r->SetInt64(&m, d->field(0), *ns);
        return;
      }
      case K::kQuantity:
        r->SetString(&m, d->field(0),
                     v.is_string() ? std::string(v.get_string()) : json::serialize(v));
        return;
      case K::kIntOrString:
        if (v.is_string()) {
          r->SetInt64(&m, d->field(0), 1);
          r->SetString(&m, d->field(2), std::string(v.get_string()));
        } else if (auto i = Int(v)) {
          r->SetInt64(&m, d->field(0), 0);
          r->SetInt32(&m, d->field(1), static_cast<int32_t>(*i));
        } else {
          Fail("an int-or-string is neither");
        }
        return;
      case K::kRawJson:
        r->SetString(&m, d->field(0), json::serialize(v));
        return;
      default:
        Fail("a value with no protobuf form");
    }
  }

  void Set(const json::value& v, const TypeRef& t, const pb::FieldDescriptor* fd, pb::Message& m) {
    const pb::Reflection* r = m.GetReflection();
    switch (fd->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING:
        if (!v.is_string()) return Fail(fmt::format("{} is not a string", fd->json_name()));
        if (t.kind == K::kBytes) {
          std::string clean;
          for (char c : v.get_string())
            if (c != '\r' && c != '\n') clean += c;
          auto bytes = Base64Decode(clean);
          if (!bytes) return Fail(fmt::format("{} is not base64", fd->json_name()));
          return r->SetString(&m, fd, std::move(*bytes));
        }
        return r->SetString(&m, fd, std::string(v.get_string()));
      case pb::FieldDescriptor::CPPTYPE_INT32:
      case pb::FieldDescriptor::CPPTYPE_INT64: {
        auto i = Int(v);
        if (!i) return Fail(fmt::format("{} is not an integer", fd->json_name()));
        if (fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32)
          return r->SetInt32(&m, fd, static_cast<int32_t>(*i));
        return r->SetInt64(&m, fd, *i);
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        if (!v.is_bool()) return Fail(fmt::format("{} is not a bool", fd->json_name()));
        return r->SetBool(&m, fd, v.get_bool());
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        if (!v.is_number()) return Fail(fmt::format("{} is not a number", fd->json_name()));
        return r->SetDouble(&m, fd, v.to_number<double>());
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        return FillMessage(v, t, *r->MutableMessage(&m, fd));
      default:
        return Fail("a field type kiso does not encode");
    }
  }

  void Add(const json::value& v, const TypeRef& t, const pb::FieldDescriptor* fd, pb::Message& m) {
    const pb::Reflection* r = m.GetReflection();
    switch (fd->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        if (!v.is_string()) return Fail(fmt::format("{} holds a non-string", fd->json_name()));
        std::string s(v.get_string());
        if (t.kind == K::kBytes) {
          auto bytes = Base64Decode(s);
          if (!bytes) return Fail(fmt::format("{} holds non-base64", fd->json_name()));
          s = std::move(*bytes);
        }
        return r->AddString(&m, fd, std::move(s));
      }
      case pb::FieldDescriptor::CPPTYPE_INT32:
      case pb::FieldDescriptor::CPPTYPE_INT64: {
        auto i = Int(v);
        if (!i) return Fail(fmt::format("{} holds a non-integer", fd->json_name()));
        if (fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32)
          return r->AddInt32(&m, fd, static_cast<int32_t>(*i));
        return r->AddInt64(&m, fd, *i);
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        if (!v.is_bool()) return Fail(fmt::format("{} holds a non-bool", fd->json_name()));
        return r->AddBool(&m, fd, v.get_bool());
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        if (!v.is_number()) return Fail(fmt::format("{} holds a non-number", fd->json_name()));
        return r->AddDouble(&m, fd, v.to_number<double>());
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
        pb::Message* element = r->AddMessage(&m, fd);
        return FillMessage(v, t, *element);
      }
      default:
        return Fail("a field type kiso does not encode");
    }
  }

  void Map(const json::value& v, const Field& f, const pb::FieldDescriptor* fd, pb::Message& m) {
    const auto* obj = v.if_object();
    if (obj == nullptr) return Fail(fmt::format("{} is not a map", f.name));
    // In key order, as Go writes maps.
    std::vector<std::pair<std::string_view, const json::value*>> entries;
    for (const auto& [key, value] : *obj) entries.emplace_back(key, &value);
    std::sort(entries.begin(), entries.end());
    const pb::Reflection* r = m.GetReflection();
    for (const auto& [key, value] : entries) {
      pb::Message* entry = r->AddMessage(&m, fd);
      const pb::Descriptor* ed = entry->GetDescriptor();
      const pb::Reflection* er = entry->GetReflection();
      er->SetString(entry, ed->field(0), std::string(key));
      if (value->is_null()) continue;
      if (f.type.element->kind == K::kList) {
        pb::Message* list = er->MutableMessage(entry, ed->field(1));
        const auto* arr = value->if_array();
        if (arr == nullptr) return Fail(fmt::format("{}[{}] is not a list", f.name, key));
        for (const auto& s : *arr) {
          if (!s.is_string()) return Fail(fmt::format("{}[{}] holds a non-string", f.name, key));
          list->GetReflection()->AddString(list, list->GetDescriptor()->field(0),
                                           std::string(s.get_string()));
        }
      } else {
        Set(*value, *f.type.element, ed->field(1), *entry);
      }
    }
  }

  std::string error_;
};

std::string Envelope(const std::string& api_version, const std::string& kind, std::string raw) {
  const Pool& pool = ThePool();
  auto envelope = pool.New(pool.Runtime("Unknown"));
  const pb::Descriptor* ed = envelope->GetDescriptor();
  const pb::Reflection* er = envelope->GetReflection();
  pb::Message* type_meta = er->MutableMessage(envelope.get(), ed->FindFieldByName("typeMeta"));
  type_meta->GetReflection()->SetString(type_meta, type_meta->GetDescriptor()->field(0),
                                        api_version);
  type_meta->GetReflection()->SetString(type_meta, type_meta->GetDescriptor()->field(1), kind);
  er->SetString(envelope.get(), ed->FindFieldByName("raw"), std::move(raw));
  std::string out(kMagic);
  out += envelope->SerializeAsString();
  return out;
}

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF): what a JSON document may hold.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

// Every string and key of a decoded object is UTF-8 (protobuf's strings may
// hold any bytes; JSON's may not). The object's depth is the decoder's, bounded.
bool AllUtf8(const json::value& v) {
  if (v.is_string()) return ValidUtf8(v.get_string());
  if (v.is_array()) {
    for (const auto& e : v.get_array())
      if (!AllUtf8(e)) return false;
  }
  if (v.is_object()) {
    for (const auto& [k, e] : v.get_object())
      if (!ValidUtf8(k) || !AllUtf8(e)) return false;
  }
  return true;
}

}  // namespace

ApiOr<json::value> DecodeProtobuf(std::string_view body) {
  auto out = Decoder::Decode(body, 0);
  if (out.ok() && !AllUtf8(*out))
    return BadRequest("the protobuf body holds a string that is not UTF-8");
  return out;
}

ApiOr<std::string> EncodeProtobuf(const json::value& object) {
  const Pool& pool = ThePool();
  const auto* obj = object.if_object();
  if (obj == nullptr || !pool.errors().empty())
    return NotAcceptable("the object has no protobuf form");
  std::string kind(GetString(object, {"kind"}));
  std::string api_version(GetString(object, {"apiVersion"}));
  bool list = false;
  const Type* type = KindType(api_version, kind, &list);
  const pb::Descriptor* d = type ? pool.Message(type->name, list) : nullptr;
  if (d == nullptr)
    return NotAcceptable(fmt::format("kind {:?} has no protobuf form in kiso", kind));
  auto message = pool.New(d);
  Encoder encoder;
  if (list) {
    const pb::Reflection* r = message->GetReflection();
    const Type* list_meta = schema::FindType("ListMeta");
    if (const auto* meta = obj->if_contains("metadata"); meta && meta->is_object() && list_meta) {
      encoder.Message(meta->get_object(), *list_meta,
                      *r->MutableMessage(message.get(), d->field(0)));
    }
    if (const auto* items = obj->if_contains("items"); items && items->is_array()) {
      for (const auto& item : items->get_array()) {
        if (!item.is_object()) return NotAcceptable("a list item is not an object");
        encoder.Message(item.get_object(), *type, *r->AddMessage(message.get(), d->field(1)));
      }
    }
  } else {
    encoder.Message(*obj, *type, *message);
  }
  if (!encoder.error().empty()) {
    return NotAcceptable(
        fmt::format("{} cannot be encoded as protobuf: {}", kind, encoder.error()));
  }
  return Envelope(api_version, kind, message->SerializeAsString());
}

ApiOr<std::string> EncodeProtobufWatchEvent(std::string_view type, const json::value& object) {
  auto body = EncodeProtobuf(object);
  if (!body.ok()) return body.error();
  const Pool& pool = ThePool();
  auto event = pool.New(pool.Runtime("WatchEvent"));
  const pb::Descriptor* d = event->GetDescriptor();
  const pb::Reflection* r = event->GetReflection();
  r->SetString(event.get(), d->field(0), std::string(type));
  pb::Message* raw = r->MutableMessage(event.get(), d->field(1));
  raw->GetReflection()->SetString(raw, raw->GetDescriptor()->field(0), std::move(*body));
  std::string payload = event->SerializeAsString();
  std::string out(4, '\0');
  uint32_t n = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out[static_cast<size_t>(i)] = static_cast<char>(n >> (24 - 8 * i));
  return out + payload;
}

const std::vector<std::string>& ProtobufSchemaErrors() { return ThePool().errors(); }

}  // namespace kiso::api

// The plugin's entry points (see protobuf.h). The plugin's code is hidden:
// these call its own functions, not the executable's of the same names.
KISO_PLUGIN_ENTRY void KisoDecodeProtobuf(std::string_view body,
                                          kiso::api::ApiOr<boost::json::value>* out) {
  *out = kiso::api::DecodeProtobuf(body);
}

KISO_PLUGIN_ENTRY void KisoEncodeProtobuf(const boost::json::value* object,
                                          kiso::api::ApiOr<std::string>* out) {
  *out = kiso::api::EncodeProtobuf(*object);
}

KISO_PLUGIN_ENTRY void KisoEncodeProtobufWatchEvent(std::string_view type,
                                                    const boost::json::value* object,
                                                    kiso::api::ApiOr<std::string>* out) {
  *out = kiso::api::EncodeProtobufWatchEvent(type, *object);
}

KISO_PLUGIN_ENTRY const std::vector<std::string>* KisoProtobufSchemaErrors() {
  return &kiso::api::ProtobufSchemaErrors();
}
