// Label and field selectors (k8s.io/apimachinery/pkg/labels and /fields):
// parsed once per request, then matched against many objects.
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiso::api {

struct Requirement {
  enum class Op { kEqual, kNotEqual, kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Op op = Op::kEqual;
  std::vector<std::string> values;
};

// `a=b,c!=d,e in (x,y),f notin (z),g,!h` — comma means AND; empty selects everything.
class LabelSelector {
 public:
  // InvalidArgument with upstream's wording for a malformed selector.
  static Result<LabelSelector> Parse(std::string_view text);
  // A metav1.LabelSelector ({matchLabels, matchExpressions}); an empty or
  // null one selects everything (callers decide whether that is allowed).
  static Result<LabelSelector> FromObject(const boost::json::value& selector);
  bool Matches(const std::map<std::string, std::string, std::less<>>& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

// A metav1.LabelSelector (or a plain label map, as a ReplicationController's
// selector) as selector text, terms sorted (metav1.FormatLabelSelector); ""
// for one that selects everything.
std::string FormatLabelSelector(const boost::json::value& selector);

// The pods a policy/v1 PodDisruptionBudget selects: its spec.selector, where
// a null one selects no pods (nullopt) and an empty one every pod of the
// namespace (policy/v1's rule); nullopt too for one that does not parse.
std::optional<LabelSelector> BudgetSelector(const boost::json::value& pdb);

// `metadata.name=x,status.phase!=Running`: equality only, as upstream.
class FieldSelector {
 public:
  struct Term {
    std::string field;
    std::string value;
    bool negate = false;
  };
  static Result<FieldSelector> Parse(std::string_view text);
  // `lookup(field)` returns the object's value for a supported field.
  bool Matches(const std::function<std::string(std::string_view)>& lookup) const;
  bool empty() const { return terms_.empty(); }
  const std::vector<Term>& terms() const { return terms_; }
  // The value required for `field` by an equality term, if any (used to narrow a list).
  std::optional<std::string> RequiredValue(std::string_view field) const;

 private:
  std::vector<Term> terms_;
};

}  // namespace kiso::api
