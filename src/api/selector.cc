#include "api/selector.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "api/object.h"

namespace kiso::api {

namespace {

// A small scanner over the selector text (labels/selector.go's lexer, simplified).
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Done() {
    SkipSpace();
    return pos_ >= text_.size();
  }
  bool Consume(std::string_view token) {
    SkipSpace();
    if (text_.substr(pos_).starts_with(token)) {
      pos_ += token.size();
      return true;
    }
    return false;
  }
  // A key or value: anything up to a delimiter.
  std::string Word() {
    SkipSpace();
    size_t start = pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '=' || c == '!' ||
          c == '(' || c == ')')
        break;
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }
  // True if the next word is `keyword` followed by a space or '('.
  bool ConsumeKeyword(std::string_view keyword) {
    SkipSpace();
    if (!text_.substr(pos_).starts_with(keyword)) return false;
    size_t after = pos_ + keyword.size();
    if (after < text_.size() && !std::isspace(static_cast<unsigned char>(text_[after])) &&
        text_[after] != '(')
      return false;
    pos_ = after;
    last_keyword_ = keyword;
    return true;
  }
  std::string_view last_keyword() const { return last_keyword_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  std::string_view last_keyword_;
};

Status Bad(std::string_view text, std::string_view why) {
  return MakeStatus(Code::kInvalidArgument, "unable to parse requirement: {} in {:?}", why, text);
}

bool ValidLabelValue(std::string_view v) {
  if (v.size() > 63) return false;
  if (v.empty()) return true;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(v.front()) || !alnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

}  // namespace

Result<LabelSelector> LabelSelector::FromObject(const boost::json::value& selector) {
  LabelSelector sel;
  if (selector.is_null()) return sel;
  if (!selector.is_object()) return Status(Code::kInvalidArgument, "a label selector is an object");
  const auto& obj = selector.get_object();
  if (const auto* ml = obj.if_contains("matchLabels"); ml && ml->is_object()) {
    for (const auto& [k, v] : ml->get_object()) {
      if (!v.is_string()) return Status(Code::kInvalidArgument, "matchLabels values are strings");
      sel.requirements_.push_back(
          {std::string(k), Requirement::Op::kEqual, {std::string(v.get_string())}});
    }
  }
  if (const auto* me = obj.if_contains("matchExpressions"); me && me->is_array()) {
    for (const auto& e : me->get_array()) {
      const auto* key = e.is_object() ? e.get_object().if_contains("key") : nullptr;
      const auto* op = e.is_object() ? e.get_object().if_contains("operator") : nullptr;
      if (!key || !key->is_string() || !op || !op->is_string())
        return Status(Code::kInvalidArgument, "a match expression needs a key and an operator");
      Requirement r;
      r.key = std::string(key->get_string());
      std::string_view o = op->get_string();
      if (o == "In") {
        r.op = Requirement::Op::kIn;
      } else if (o == "NotIn") {
        r.op = Requirement::Op::kNotIn;
      } else if (o == "Exists") {
        r.op = Requirement::Op::kExists;
      } else if (o == "DoesNotExist") {
        r.op = Requirement::Op::kDoesNotExist;
      } else {
        return Status(Code::kInvalidArgument,
                      fmt::format("{:?} is not a valid label selector operator", o));
      }
      if (const auto* vs = e.get_object().if_contains("values"); vs && vs->is_array()) {
        for (const auto& v : vs->get_array())
          if (v.is_string()) r.values.emplace_back(v.get_string());
      }
      sel.requirements_.push_back(std::move(r));
    }
  }
  return sel;
}

Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector sel;
  Scanner s(text);
  if (s.Done()) return sel;
  while (true) {
    Requirement r;
    if (s.Consume("!")) {
      r.key = s.Word();
      r.op = Requirement::Op::kDoesNotExist;
    } else {
      r.key = s.Word();
      if (s.Consume("==") || s.Consume("=")) {
        r.op = Requirement::Op::kEqual;
        r.values.push_back(s.Word());
      } else if (s.Consume("!=")) {
        r.op = Requirement::Op::kNotEqual;
        r.values.push_back(s.Word());
      } else if (s.ConsumeKeyword("notin") || s.ConsumeKeyword("in")) {
        r.op = s.last_keyword() == "notin" ? Requirement::Op::kNotIn : Requirement::Op::kIn;
        if (!s.Consume("(")) return Bad(text, "expected '(' after in/notin");
        while (true) {
          std::string v = s.Word();
          if (!v.empty()) r.values.push_back(v);
          if (s.Consume(")")) break;
          if (!s.Consume(",")) return Bad(text, "expected ',' or ')' in value set");
        }
      } else {
        r.op = Requirement::Op::kExists;
      }
    }
    if (r.key.empty()) return Bad(text, "empty key");
    for (const auto& v : r.values) {
      if (!ValidLabelValue(v)) return Bad(text, "invalid label value " + v);
    }
    sel.requirements_.push_back(std::move(r));
    if (s.Done()) break;
    if (!s.Consume(",")) return Bad(text, "expected ','");
  }
  return sel;
}

bool LabelSelector::Matches(const std::map<std::string, std::string, std::less<>>& labels) const {
  for (const auto& r : requirements_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    switch (r.op) {
      case Requirement::Op::kEqual:
        if (!has || it->second != r.values[0]) return false;
        break;
      case Requirement::Op::kNotEqual:
        if (has && it->second == r.values[0]) return false;
        break;
      case Requirement::Op::kIn:
        if (!has || std::find(r.values.begin(), r.values.end(), it->second) == r.values.end())
          return false;
        break;
      case Requirement::Op::kNotIn:
        if (has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end())
          return false;
        break;
      case Requirement::Op::kExists:
        if (!has) return false;
        break;
      case Requirement::Op::kDoesNotExist:
        if (has) return false;
        break;
    }
  }
  return true;
}

Result<FieldSelector> FieldSelector::Parse(std::string_view text) {
  FieldSelector sel;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view part = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (part.empty()) continue;
    Term t;
    size_t op = part.find("!=");
    size_t len = 2;
    if (op != std::string_view::npos) {
      t.negate = true;
    } else if ((op = part.find("==")) != std::string_view::npos) {
    } else if ((op = part.find('=')) != std::string_view::npos) {
      len = 1;
    } else {
      return MakeStatus(Code::kInvalidArgument, "invalid selector: '{}'; can't understand '{}'",
                        text, part);
    }
    t.field = std::string(part.substr(0, op));
    t.value = std::string(part.substr(op + len));
    sel.terms_.push_back(std::move(t));
  }
  return sel;
}

bool FieldSelector::Matches(const std::function<std::string(std::string_view)>& lookup) const {
  for (const auto& t : terms_) {
    if ((lookup(t.field) == t.value) == t.negate) return false;
  }
  return true;
}

std::optional<std::string> FieldSelector::RequiredValue(std::string_view field) const {
  for (const auto& t : terms_) {
    if (!t.negate && t.field == field) return t.value;
  }
  return std::nullopt;
}

std::optional<LabelSelector> BudgetSelector(const boost::json::value& pdb) {
  const auto* spec = pdb.is_object() ? pdb.get_object().if_contains("spec") : nullptr;
  const auto* sel =
      spec && spec->is_object() ? spec->get_object().if_contains("selector") : nullptr;
  if (!sel || sel->is_null()) return std::nullopt;
  auto selector = LabelSelector::FromObject(*sel);
  if (!selector.ok()) return std::nullopt;
  return std::move(*selector);
}

std::string FormatLabelSelector(const boost::json::value& selector) {
  namespace json = boost::json;
  const json::value* sel = &selector;
  if (!sel->is_object()) return "";
  const json::object* labels = &sel->get_object();
  if (const auto* ml = sel->get_object().if_contains("matchLabels"); ml && ml->is_object()) {
    labels = &ml->get_object();
  } else if (sel->get_object().contains("matchExpressions")) {
    labels = nullptr;
  }
  std::vector<std::string> parts;
  if (labels) {
    for (const auto& [k, v] : *labels) {
      if (v.is_string())
        parts.push_back(fmt::format("{}={}", std::string_view(k), v.get_string().c_str()));
    }
  }
  if (const auto* me = Find(*sel, {"matchExpressions"}); me && me->is_array()) {
    for (const auto& e : me->get_array()) {
      std::string key(api::GetString(e, {"key"}));
      std::string op(api::GetString(e, {"operator"}));
      std::vector<std::string> values;
      if (const auto* vs = Find(e, {"values"}); vs && vs->is_array()) {
        for (const auto& v : vs->get_array()) {
          if (v.is_string()) values.emplace_back(v.get_string());
        }
      }
      if (op == "In") parts.push_back(fmt::format("{} in ({})", key, fmt::join(values, ",")));
      if (op == "NotIn") parts.push_back(fmt::format("{} notin ({})", key, fmt::join(values, ",")));
      if (op == "Exists") parts.push_back(key);
      if (op == "DoesNotExist") parts.push_back("!" + key);
    }
  }
  std::sort(parts.begin(), parts.end());
  return fmt::format("{}", fmt::join(parts, ","));
}

}  // namespace kiso::api
