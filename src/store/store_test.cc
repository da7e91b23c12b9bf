#include "store/store.h"

#include <gtest/gtest.h>

namespace kiso::store {
namespace {

TEST(PrefixEndTest, IncrementsTheLastByteThatCanBe) {
  EXPECT_EQ(PrefixEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), KeyRange::kRangeToEnd);
  EXPECT_EQ(PrefixEnd(""), KeyRange::kRangeToEnd);
}

TEST(KeyRangeTest, Contains) {
  EXPECT_TRUE(KeyRange::Single("/a").Contains("/a"));
  EXPECT_FALSE(KeyRange::Single("/a").Contains("/a/b"));
  KeyRange p = KeyRange::Prefix("/p/");
  EXPECT_TRUE(p.Contains("/p/x"));
  EXPECT_FALSE(p.Contains("/p"));
  EXPECT_FALSE(p.Contains("/q"));
  KeyRange to_end{"/m", KeyRange::kRangeToEnd};
  EXPECT_TRUE(to_end.Contains("/z"));
  EXPECT_FALSE(to_end.Contains("/a"));
}

TEST(ValidateTest, RefusesEmptyKeysBadRangesAndHugeValues) {
  EXPECT_EQ(ValidateRange(KeyRange::Single("")).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateRange(KeyRange::Between("b", "a")).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateRange(KeyRange::Between("a", "a")).code(), Code::kInvalidArgument);
  EXPECT_TRUE(ValidateRange({"", KeyRange::kRangeToEnd}).ok());  // Everything.
  TxnRequest big;
  big.success.push_back(TxnOp::Put("k", std::string(kMaxValueBytes + 1, 'x')));
  EXPECT_EQ(ValidateTxn(big).code(), Code::kInvalidArgument);
  TxnRequest dup;
  dup.success = {TxnOp::Put("k", "1"), TxnOp::Put("k", "2")};
  EXPECT_EQ(ValidateTxn(dup).code(), Code::kInvalidArgument);
  TxnRequest ok;
  ok.success.push_back(TxnOp::Put("k", std::string(kMaxValueBytes, 'x')));
  EXPECT_TRUE(ValidateTxn(ok).ok());
}

TEST(OpenStoreTest, UnknownSchemeIsAClearError) {
  auto s = OpenStore("redis://localhost");
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("sqlite:///"), std::string::npos);
}

}  // namespace
}  // namespace kiso::store
