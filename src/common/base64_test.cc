#include "common/base64.h"

#include <gtest/gtest.h>

namespace kiso {
namespace {

TEST(Base64, RoundTripsEveryLengthInBothAlphabets) {
  std::string data;
  for (int i = 0; i < 70; ++i) {
    EXPECT_EQ(Base64Decode(Base64Encode(data)), data);
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(data)), data);
    data += static_cast<char>(i * 37 + 250);
  }
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
}

TEST(Base64, RefusesWhatIsNotBase64) {
  EXPECT_EQ(Base64Decode("aGVsbG8"), std::nullopt);    // Not a multiple of 4.
  EXPECT_EQ(Base64Decode("aGV sbG8="), std::nullopt);  // A space.
  EXPECT_EQ(Base64Decode("aG=sbG8="), std::nullopt);   // Padding inside.
  EXPECT_EQ(Base64UrlDecode("a+b_"), std::nullopt);    // Standard alphabet in URL form.
  EXPECT_EQ(Base64UrlDecode("abcde"), std::nullopt);   // A length no encoding has.
}

}  // namespace
}  // namespace kiso
