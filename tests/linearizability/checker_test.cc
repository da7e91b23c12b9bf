// Proves the checker on histories with known verdicts before it is trusted
// with kiso's own: every Jepsen etcd log and KV history in data/ (beside
// this file; its README says where they come from) must get the verdict in
// expected.tsv.
#include "linearizability/checker.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "linearizability/history.h"

namespace kiso::linearizability {
namespace {

std::string DataDir() { return KISO_LINEARIZABILITY_DATA; }

struct Case {
  std::string file;
  bool linearizable;
};

std::vector<Case> ExpectedVerdicts() {
  std::vector<Case> cases;
  std::ifstream in(DataDir() + "/expected.tsv");
  std::string file, verdict;
  while (in >> file >> verdict) {
    if (verdict == "linearizable" || verdict == "NOT-linearizable") {
      cases.push_back({file, verdict == "linearizable"});
    }
  }
  return cases;
}

TEST(CheckerTest, AgreesWithEveryKnownVerdict) {
  std::vector<Case> cases = ExpectedVerdicts();
  ASSERT_GE(cases.size(), 100u) << "expected.tsv not found under " << DataDir();
  int linearizable = 0, not_linearizable = 0;
  for (const Case& c : cases) {
    std::string path = DataDir() + "/" + c.file;
    std::string error;
    Verdict v;
    if (c.file.starts_with("jepsen/")) {
      std::vector<Operation<RegisterModel>> ops;
      ASSERT_TRUE(ParseJepsenLog(path, &ops, &error)) << error;
      ASSERT_FALSE(ops.empty()) << path;
      v = Check<RegisterModel>(ops);
    } else {
      std::vector<std::vector<Operation<AppendKvModel>>> parts;
      ASSERT_TRUE(ParseKvLog(path, &parts, &error)) << error;
      ASSERT_FALSE(parts.empty()) << path;
      v = CheckPartitioned<AppendKvModel>(parts);
    }
    ASSERT_NE(v, Verdict::kTimedOut) << c.file;
    EXPECT_EQ(v == Verdict::kLinearizable, c.linearizable) << c.file;
    (c.linearizable ? linearizable : not_linearizable)++;
  }
  // Both verdicts are exercised: the checker can say yes and can say no.
  EXPECT_GT(linearizable, 0);
  EXPECT_GT(not_linearizable, 0);
}

using Op = Operation<StoreKvModel>;
using Kind = StoreKvModel::Kind;

Op Put(int64_t call, int64_t ret, std::string v) {
  return {0, {Kind::kPut, std::move(v), ""}, {}, call, ret};
}
Op Get(int64_t call, int64_t ret, std::optional<std::string> v) {
  return {1, {Kind::kGet, "", ""}, {false, false, std::move(v)}, call, ret};
}

TEST(CheckerTest, RejectsAStaleRead) {
  // put(a) completes, then a later get still sees nothing.
  std::vector<Op> h = {Put(1, 2, "a"), Get(3, 4, std::nullopt)};
  EXPECT_EQ(Check<StoreKvModel>(h), Verdict::kNotLinearizable);
}

TEST(CheckerTest, AcceptsOverlappingOperationsInEitherOrder) {
  std::vector<Op> h = {Put(1, 5, "a"), Get(2, 3, std::nullopt), Get(4, 6, "a")};
  EXPECT_EQ(Check<StoreKvModel>(h), Verdict::kLinearizable);
}

TEST(CheckerTest, RejectsAReadThatGoesBackInTime) {
  // Two sequential reads, the second older than the first: not linearizable.
  std::vector<Op> h = {Put(1, 2, "a"), Put(3, 10, "b"), Get(4, 5, "b"), Get(6, 7, "a")};
  EXPECT_EQ(Check<StoreKvModel>(h), Verdict::kNotLinearizable);
}

TEST(CheckerTest, AnUnknownOutcomeMayOrMayNotHaveHappened) {
  Op lost = Put(1, kNever, "x");
  lost.output.unknown = true;
  EXPECT_EQ(Check<StoreKvModel>({lost, Get(2, 3, std::nullopt)}), Verdict::kLinearizable);
  EXPECT_EQ(Check<StoreKvModel>({lost, Get(2, 3, "x")}), Verdict::kLinearizable);
}

}  // namespace
}  // namespace kiso::linearizability
