#include "common/random.h"

#include <gtest/gtest.h>

#include <set>
#include <string_view>
#include <thread>

namespace kiso {
namespace {

TEST(RandomTest, NameSuffixUsesTheAlphabetWithoutVowels) {
  constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string s = RandomNameSuffix();
    ASSERT_EQ(s.size(), 5U);
    for (char c : s) EXPECT_NE(kAlphabet.find(c), std::string_view::npos) << s;
    seen.insert(s);
  }
  EXPECT_GT(seen.size(), 190U);  // 27^5 choices: collisions in 200 draws are rare.
  EXPECT_EQ(RandomNameSuffix(12).size(), 12U);
}

TEST(RandomTest, BelowStaysInItsBoundAndCoversIt) {
  EXPECT_EQ(RandomBelow(0), 0U);
  EXPECT_EQ(RandomBelow(1), 0U);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    uint64_t v = RandomBelow(7);
    ASSERT_LT(v, 7U);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 7U);
}

TEST(RandomTest, ThreadsDrawFromTheirOwnGenerators) {
  uint64_t here = ThreadRng()();
  uint64_t there = 0;
  std::mt19937_64* other = nullptr;
  std::thread t([&] {
    other = &ThreadRng();
    there = (*other)();
  });
  t.join();
  EXPECT_NE(other, &ThreadRng());
  EXPECT_NE(here, there);  // Seeded apart: equal first draws would be a 2^-64 accident.
}

}  // namespace
}  // namespace kiso
