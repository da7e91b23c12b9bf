#include "api/object.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <chrono>
#include <random>
#include <set>
#include <vector>

#include "common/clock.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

// Finds the first key repeated within one JSON object, walking the text with
// Boost.JSON's SAX parser (Boost 1.81's DOM parser silently keeps one copy).
// NOLINTBEGIN(readability-identifier-naming): Boost.JSON's handler concept names these.
class DuplicateKeyFinder {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  // NOLINTEND(readability-identifier-naming)
  std::string duplicate;  // "spec.replicas" when found.

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    frames_.push_back({});
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) { return EndContainer(); }
  bool on_array_begin(json::error_code&) {
    frames_.push_back({true, {}});
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) { return EndContainer(); }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    key_ += part;
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    key_ += part;
    auto& frame = frames_.back();
    if (!frame.keys.insert(key_).second && duplicate.empty()) {
      duplicate.clear();
      for (const auto& p : path_) duplicate += p + ".";
      duplicate += key_;
    }
    path_.push_back(key_);
    key_.clear();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return Scalar(); }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return Scalar(); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return Scalar(); }
  bool on_double(double, json::string_view, json::error_code&) { return Scalar(); }
  bool on_bool(bool, json::error_code&) { return Scalar(); }
  bool on_null(json::error_code&) { return Scalar(); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    bool array = false;
    std::set<std::string> keys;
  };
  // A value that is an object member ends that member's path segment.
  bool Scalar() {
    if (!frames_.empty() && !frames_.back().array && !path_.empty()) path_.pop_back();
    return true;
  }
  bool EndContainer() {
    frames_.pop_back();
    return Scalar();
  }
  std::vector<Frame> frames_;
  std::vector<std::string> path_;
  std::string key_;
};

json::value YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json::object obj;
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      json::array arr;
      for (const auto& item : node) arr.push_back(YamlToJson(item));
      return arr;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return json::value(s);
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      if (s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
      int64_t i = 0;
      if (YAML::convert<int64_t>::decode(node, i) &&
          s.find_first_not_of("+-0123456789") == std::string::npos)
        return i;
      double d = 0;
      if (s.find_first_of("0123456789") != std::string::npos &&
          s.find_first_not_of("+-0123456789.eE") == std::string::npos &&
          YAML::convert<double>::decode(node, d))
        return d;
      return json::value(s);
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

Result<json::value> ParseJson(std::string_view text, bool strict) {
  json::error_code ec;
  json::parse_options options;
  options.max_depth = 64;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) return MakeStatus(Code::kInvalidArgument, "invalid JSON: {}", ec.message());
  if (strict) {
    json::basic_parser<DuplicateKeyFinder> finder(options);
    finder.write_some(false, text.data(), text.size(), ec);
    if (!finder.handler().duplicate.empty())
      return MakeStatus(Code::kAlreadyExists, "duplicate field \"{}\"", finder.handler().duplicate);
  }
  return v;
}

Result<json::value> ParseYaml(std::string_view text) {
  try {
    YAML::Node node = YAML::Load(std::string(text));
    return YamlToJson(node);
  } catch (const YAML::Exception& e) {
    return MakeStatus(Code::kInvalidArgument, "invalid YAML: {}", e.what());
  }
}

const json::value* Find(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view key : path) {
    const auto* obj = cur->if_object();
    if (!obj) return nullptr;
    cur = obj->if_contains(key);
    if (!cur) return nullptr;
  }
  return cur;
}

std::string_view GetString(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* found = Find(v, path);
  return found && found->is_string() ? std::string_view(found->get_string()) : std::string_view();
}

const json::array& GetArray(const json::value& v, std::initializer_list<std::string_view> path) {
  static const json::array kEmpty;
  const json::value* found = Find(v, path);
  return found && found->is_array() ? found->get_array() : kEmpty;
}

const json::value* Find(const json::object& obj, std::initializer_list<std::string_view> path) {
  if (path.size() == 0) return nullptr;
  const json::value* cur = obj.if_contains(*path.begin());
  for (auto it = path.begin() + 1; cur && it != path.end(); ++it) {
    const auto* o = cur->if_object();
    cur = o ? o->if_contains(*it) : nullptr;
  }
  return cur;
}

std::string_view GetString(const json::object& obj, std::initializer_list<std::string_view> path) {
  const json::value* found = Find(obj, path);
  return found && found->is_string() ? std::string_view(found->get_string()) : std::string_view();
}

json::object& Child(json::object& parent, std::string_view key) {
  json::value& v = parent[key];
  if (!v.is_object()) v = json::object();
  return v.get_object();
}

Labels GetLabels(const json::value& obj) {
  Labels labels;
  if (const auto* l = Find(obj, {"metadata", "labels"}); l && l->is_object()) {
    for (const auto& [k, v] : l->get_object()) {
      if (v.is_string()) labels.emplace(std::string(k), std::string(v.get_string()));
    }
  }
  return labels;
}

std::string NowRfc3339() { return kiso::NowRfc3339(); }

std::string NewUid() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // Version 4.
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant.
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff,
                     hi & 0xffff, lo >> 48, lo & 0xffffffffffffULL);
}

}  // namespace kiso::api
