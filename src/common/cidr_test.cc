#include "common/cidr.h"

#include <gtest/gtest.h>

namespace kiso {
namespace {

TEST(Cidr, ParsesAndCounts) {
  auto c = Ipv4Cidr::Parse("10.43.0.0/16");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Size(), 65536u);
  EXPECT_EQ(c->Address(1), "10.43.0.1");
  EXPECT_EQ(c->Address(10), "10.43.0.10");
  EXPECT_TRUE(c->Contains("10.43.255.254"));
  EXPECT_FALSE(c->Contains("10.44.0.1"));
  EXPECT_FALSE(c->Contains("10.43.0"));
  EXPECT_EQ(c->ToString(), "10.43.0.0/16");
}

TEST(Cidr, RefusesWhatIsNotARange) {
  for (const char* bad : {"10.43.0.0", "10.43.0.1/16", "10.43.0.0/33", "10.43.0.0/4", "10.43.0/16",
                          "10.43.0.0/16x", "256.0.0.0/8", "a.b.c.d/8"}) {
    EXPECT_FALSE(Ipv4Cidr::Parse(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseIpv4("1.2.3.4"), 0x01020304u);
  EXPECT_FALSE(ParseIpv4("1.2.3.4 "));
  EXPECT_FALSE(ParseIpv4("01234.1.1.1"));
}

}  // namespace
}  // namespace kiso
