#include "api/object.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "api/packed_json.h"
#include "common/clock.h"
#include "common/random.h"

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

// Builds JSON from yaml-cpp's parse events, charging every value to a budget
// of serialised bytes as it is made. An alias is a copy of its anchor's value,
// charged in full before it is made: a "billion laughs" document runs out of
// budget after a few kilobytes of work instead of expanding in memory.
class JsonBuilder : public YAML::EventHandler {
 public:
  explicit JsonBuilder(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Thrown out of the parser by a handler: the document broke a limit.
  struct LimitError {
    Code code;
    std::string message;
  };

  json::value Take() { return std::move(result_); }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override {
    Value(nullptr, 4, anchor, "null");
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw LimitError{Code::kInvalidArgument, "unknown anchor"};
    const auto& [value, size] = it->second;
    Charge(size);
    Value(value, 0, 0,
          value.is_string() ? std::string(value.get_string()) : json::serialize(value));
  }
  void OnScalar(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor,
                const std::string& text) override {
    json::value v = Scalar(tag, text);
    Value(std::move(v), text.size() + 2, anchor, text);
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(json::array(), anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(json::object(), anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    json::value value;  // An object or an array.
    YAML::anchor_t anchor = 0;
    size_t start = 0;                // used_ when it opened: its own size is used_ − start.
    std::optional<std::string> key;  // A map's key awaiting its value.
  };

  void Charge(size_t bytes) {
    used_ += bytes;
    if (used_ > max_bytes_) {
      throw LimitError{Code::kResourceExhausted,
                       fmt::format("the document is larger than the limit of {} bytes once its "
                                   "aliases are expanded",
                                   max_bytes_)};
    }
  }

  static json::value Scalar(const std::string& tag, const std::string& s) {
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return json::value(s);
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    if (s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
    std::string_view digits = s;
    bool negative = false;
    if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
      negative = digits[0] == '-';
      digits.remove_prefix(1);
    }
    if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos) {
      uint64_t u = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), u);
      if (ec == std::errc() && end == digits.data() + digits.size()) {
        if (!negative && u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
        if (negative && u <= static_cast<uint64_t>(INT64_MAX) + 1)
          return static_cast<int64_t>(0 - u);
      }
    }
    if (s.find_first_of("0123456789") != std::string::npos &&
        s.find_first_not_of("+-0123456789.eE") == std::string::npos) {
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() + s.size() && std::isfinite(d)) return d;
    }
    return json::value(s);
  }

  void Open(json::value container, YAML::anchor_t anchor) {
    if (stack_.size() >= kMaxDepth) {
      throw LimitError{
          Code::kInvalidArgument,
          fmt::format("the document is nested deeper than the limit of {} levels", kMaxDepth)};
    }
    if (!stack_.empty() && stack_.back().value.is_object() && !stack_.back().key) {
      throw LimitError{Code::kInvalidArgument, "a mapping key must be a string, not a collection"};
    }
    Charge(2);
    stack_.push_back({std::move(container), anchor, used_ - 2, std::nullopt});
  }

  void Close() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    size_t size = used_ - frame.start;
    Place(std::move(frame.value), frame.anchor, size);
  }

  // A complete value (scalar, alias or closed collection) of `size` bytes.
  void Value(json::value v, size_t size, YAML::anchor_t anchor, std::string_view text) {
    if (!stack_.empty() && stack_.back().value.is_object() && !stack_.back().key) {
      // A mapping key: YAML allows any scalar; JSON keys are its text.
      if (!v.is_string() && !v.is_primitive()) {
        throw LimitError{Code::kInvalidArgument,
                         "a mapping key must be a string, not a collection"};
      }
      Charge(text.size() + 3);
      stack_.back().key = v.is_null() && text.empty() ? "null" : std::string(text);
      if (anchor != 0) anchors_[anchor] = {std::move(v), text.size() + 2};
      return;
    }
    Charge(size);
    Place(std::move(v), anchor, size);
  }

  void Place(json::value v, YAML::anchor_t anchor, size_t size) {
    if (anchor != 0) {
      Charge(size);  // The anchor keeps a copy for its aliases.
      anchors_[anchor] = {v, size};
    }
    if (stack_.empty()) {
      result_ = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    Charge(1);  // The separator.
    if (auto* arr = top.value.if_array()) {
      arr->push_back(std::move(v));
    } else {
      top.value.get_object()[*top.key] = std::move(v);
      top.key.reset();
    }
  }

  size_t max_bytes_;
  size_t used_ = 0;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, std::pair<json::value, size_t>> anchors_;
  json::value result_;
};

}  // namespace

Result<json::value> ParseJson(std::string_view text, bool strict) {
  return ParseJson(text, strict, json::storage_ptr());
}

Result<json::value> ParseJson(std::string_view text, bool strict, json::storage_ptr storage) {
  json::error_code ec;
  json::parse_options options;
  options.max_depth = kMaxDepth;
  json::value v =
      json::parse(json::string_view(text.data(), text.size()), ec, std::move(storage), options);
  if (ec == json::error::too_deep) {
    return MakeStatus(Code::kInvalidArgument,
                      "invalid JSON: the document is nested deeper than the limit of {} levels",
                      kMaxDepth);
  }
  if (ec) return MakeStatus(Code::kInvalidArgument, "invalid JSON: {}", ec.message());
  if (strict) {
    if (auto duplicate = FirstDuplicateKey(text))
      return MakeStatus(Code::kAlreadyExists, "duplicate field \"{}\"", *duplicate);
  }
  return v;
}

std::optional<std::string> FirstDuplicateKey(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxDepth;
  json::error_code ec;
  json::basic_parser<DuplicateKeyFinder> finder(options);
  finder.write_some(false, text.data(), text.size(), ec);
  if (finder.handler().duplicate.empty()) return std::nullopt;
  return finder.handler().duplicate;
}

Result<json::value> ParseYaml(std::string_view text, size_t max_bytes) {
  JsonBuilder builder(max_bytes);
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    parser.HandleNextDocument(builder);
  } catch (const JsonBuilder::LimitError& e) {
    return Status(e.code, "invalid YAML: " + e.message);
  } catch (const YAML::Exception& e) {
    return MakeStatus(Code::kInvalidArgument, "invalid YAML: {}", e.what());
  }
  return builder.Take();
}

namespace {

// A string's length as a JSON string: quotes, and escapes for the characters
// the serialiser escapes (short forms for \b \t \n \f \r, \u00XX for the
// rest of the control characters).
size_t QuotedSize(std::string_view s) {
  size_t n = 2;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r') {
      n += 2;
    } else {
      n += u < 0x20 ? 6 : 1;
    }
  }
  return n;
}

}  // namespace

size_t SerializedSize(const json::value& v, size_t limit) {
  switch (v.kind()) {
    case json::kind::null:
      return 4;
    case json::kind::bool_:
      return v.get_bool() ? 4 : 5;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return json::serialize(v).size();
    case json::kind::string:
      return QuotedSize(v.get_string());
    case json::kind::array: {
      const auto& arr = v.get_array();
      size_t n = arr.empty() ? 2 : 1 + arr.size();  // Brackets and commas.
      for (const auto& e : arr) {
        n += SerializedSize(e, limit - std::min(limit, n));
        if (n > limit) return n;
      }
      return n;
    }
    case json::kind::object: {
      const auto& obj = v.get_object();
      size_t n = obj.empty() ? 2 : 1 + obj.size() * 2;  // Braces, colons and commas.
      for (const auto& [k, e] : obj) {
        n += QuotedSize(k);
        n += SerializedSize(e, limit - std::min(limit, n));
        if (n > limit) return n;
      }
      return n;
    }
  }
  return 0;
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

bool ConditionTrue(const json::object& obj, std::string_view type) {
  for (const auto& c : GetArray(obj, {"status", "conditions"})) {
    if (GetString(c, {"type"}) == type && GetString(c, {"status"}) == "True") return true;
  }
  return false;
}

bool ConditionTrue(const json::value& obj, std::string_view type) {
  return obj.is_object() && ConditionTrue(obj.get_object(), type);
}

int64_t GetInt(const json::value& v, std::initializer_list<std::string_view> path,
               int64_t fallback) {
  const auto* x = Find(v, path);
  return x && x->is_int64() ? x->get_int64() : fallback;
}

const json::array& GetArray(const json::value& v, std::initializer_list<std::string_view> path) {
  static const auto& kEmpty = *new json::array();  // Never destroyed.
  const json::value* found = Find(v, path);
  return found && found->is_array() ? found->get_array() : kEmpty;
}

const json::array& GetArray(const json::object& obj, std::initializer_list<std::string_view> path) {
  static const auto& kEmpty = *new json::array();  // Never destroyed.
  const json::value* found = Find(obj, path);
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
  return obj.is_object() ? GetLabels(obj.get_object()) : Labels{};
}

Labels GetLabels(const json::object& obj) {
  Labels labels;
  if (const auto* l = Find(obj, {"metadata", "labels"}); l && l->is_object()) {
    for (const auto& [k, v] : l->get_object()) {
      if (v.is_string()) labels.emplace(std::string(k), std::string(v.get_string()));
    }
  }
  return labels;
}

std::string NowRfc3339() { return kiso::NowRfc3339(); }

std::string KeyOf(const json::value& obj) {
  return std::string(GetString(obj, {"metadata", "namespace"})) + "/" +
         std::string(GetString(obj, {"metadata", "name"}));
}

std::pair<std::string, std::string> SplitKey(const std::string& key) {
  size_t slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

void DropManagedFields(json::value& obj) {
  auto* o = obj.if_object();
  auto* meta = o ? o->if_contains("metadata") : nullptr;
  if (meta && meta->is_object()) meta->get_object().erase("managedFields");
}

std::string NewUid() {
  auto& rng = ThreadRng();
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // Version 4.
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant.
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff,
                     hi & 0xffff, lo >> 48, lo & 0xffffffffffffULL);
}

}  // namespace kiso::api
