#include "api/selector.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::api {
namespace {

Labels L(std::initializer_list<std::pair<const std::string, std::string>> l) { return Labels(l); }

TEST(LabelSelector, EqualityAndSetBased) {
  auto s = LabelSelector::Parse("app in (web,x),tier!=be,env==prod,!legacy,team");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->requirements().size(), 5u);
  EXPECT_EQ(s->requirements()[0].op, Requirement::Op::kIn);
  EXPECT_TRUE(s->Matches(L({{"app", "web"}, {"tier", "fe"}, {"env", "prod"}, {"team", "a"}})));
  EXPECT_FALSE(s->Matches(L({{"app", "db"}, {"env", "prod"}, {"team", "a"}})));
  EXPECT_FALSE(s->Matches(L({{"app", "web"}, {"tier", "be"}, {"env", "prod"}, {"team", "a"}})));
  EXPECT_FALSE(s->Matches(L({{"app", "x"}, {"env", "prod"}, {"team", "a"}, {"legacy", ""}})));
  EXPECT_FALSE(s->Matches(L({{"app", "x"}, {"env", "prod"}})));
}

TEST(LabelSelector, NotInAndEmpty) {
  auto s = LabelSelector::Parse("app notin (a, b)");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->requirements()[0].op, Requirement::Op::kNotIn);
  EXPECT_TRUE(s->Matches(L({{"app", "c"}})));
  EXPECT_TRUE(s->Matches(L({})));
  EXPECT_FALSE(s->Matches(L({{"app", "b"}})));
  auto all = LabelSelector::Parse("");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  EXPECT_TRUE(all->Matches(L({{"x", "y"}})));
}

TEST(LabelSelector, RejectsMalformed) {
  EXPECT_FALSE(LabelSelector::Parse("app in (a").ok());
  EXPECT_FALSE(LabelSelector::Parse("app in a").ok());
  EXPECT_FALSE(LabelSelector::Parse("=x").ok());
  EXPECT_FALSE(LabelSelector::Parse("a=b c").ok());
  EXPECT_FALSE(LabelSelector::Parse("a=-bad-").ok());
  EXPECT_EQ(LabelSelector::Parse("a in (x").status().code(), Code::kInvalidArgument);
}

TEST(LabelSelector, FromObjectMatchLabelsAndExpressions) {
  auto sel = LabelSelector::FromObject(*ParseJson(R"({"matchLabels":{"app":"web"},
      "matchExpressions":[{"key":"tier","operator":"In","values":["fe","be"]},
                          {"key":"legacy","operator":"DoesNotExist"}]})"));
  ASSERT_TRUE(sel.ok()) << sel.status().ToString();
  EXPECT_TRUE(sel->Matches(L({{"app", "web"}, {"tier", "fe"}})));
  EXPECT_FALSE(sel->Matches(L({{"app", "web"}, {"tier", "db"}})));
  EXPECT_FALSE(sel->Matches(L({{"app", "web"}, {"tier", "fe"}, {"legacy", "1"}})));
  EXPECT_FALSE(sel->Matches(L({{"tier", "fe"}})));
  EXPECT_TRUE(LabelSelector::FromObject(boost::json::value(nullptr))->empty());
  EXPECT_EQ(LabelSelector::FromObject(
                *ParseJson(R"({"matchExpressions":[{"key":"a","operator":"Near"}]})"))
                .status()
                .code(),
            Code::kInvalidArgument);
}

TEST(FieldSelector, EqualityTerms) {
  auto s = FieldSelector::Parse("metadata.name=web,status.phase!=Running");
  ASSERT_TRUE(s.ok());
  auto lookup = [](std::string_view f) -> std::string {
    return f == "metadata.name" ? "web" : "Pending";
  };
  EXPECT_TRUE(s->Matches(lookup));
  EXPECT_EQ(s->RequiredValue("metadata.name"), "web");
  EXPECT_FALSE(s->RequiredValue("status.phase").has_value());
  auto t = FieldSelector::Parse("metadata.name==other");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->Matches(lookup));
  EXPECT_FALSE(FieldSelector::Parse("metadata.name").ok());
}

TEST(BudgetSelector, NullSelectsNothingEmptySelectsEverything) {
  std::map<std::string, std::string, std::less<>> web{{"app", "web"}};
  EXPECT_FALSE(BudgetSelector(boost::json::parse(R"({"spec":{}})")));
  EXPECT_FALSE(BudgetSelector(boost::json::parse(R"({"spec":{"selector":null}})")));
  auto all = BudgetSelector(boost::json::parse(R"({"spec":{"selector":{}}})"));
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->Matches(web));
  auto db =
      BudgetSelector(boost::json::parse(R"({"spec":{"selector":{"matchLabels":{"app":"db"}}}})"));
  ASSERT_TRUE(db);
  EXPECT_FALSE(db->Matches(web));
}

}  // namespace
}  // namespace kiso::api
