#include "common/status.h"

#include <gtest/gtest.h>

namespace kiso {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return MakeStatus(Code::kInvalidArgument, "{} is odd", x);
  return x / 2;
}

Result<int> Quarter(int x) {
  KISO_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(StatusTest, OkAndErrorsFormat) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = MakeStatus(Code::kNotFound, "key {} not found", "/a");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "NotFound: key /a not found");
  EXPECT_EQ(s.Annotate("get").message(), "get: key /a not found");
}

TEST(StatusTest, ResultCarriesValueOrStatus) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "3 is odd");
}

TEST(StatusTest, ResultFromOkStatusIsAnInternalError) {
  Result<int> r{Status::Ok()};
  EXPECT_EQ(r.status().code(), Code::kInternal);
}

}  // namespace
}  // namespace kiso
