#include "common/clock.h"

#include <gtest/gtest.h>

namespace kiso {
namespace {

TEST(ClockTest, FakeClockMovesOnlyWhenAdvanced) {
  FakeClock clock;
  auto t0 = clock.Now();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(std::chrono::seconds(5));
  EXPECT_EQ(clock.Now() - t0, std::chrono::seconds(5));
}

TEST(ClockTest, RealClockIsMonotonic) {
  auto a = Clock::Real()->Now();
  auto b = Clock::Real()->Now();
  EXPECT_LE(a, b);
}

TEST(ClockTest, Rfc3339ParsesAsGoDoesAndFormatsInUtc) {
  EXPECT_EQ(ParseRfc3339("2026-01-02T03:04:05Z"), (WallTime{1767323045, 0}));
  EXPECT_EQ(ParseRfc3339("2026-01-02T04:04:05.5+01:00"), (WallTime{1767323045, 500000000}));
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00.000001Z"), (WallTime{0, 1000}));
  for (const char* bad : {"2026-01-02", "2026-01-02T03:04:05", "2026-02-31T00:00:00Z",
                          "2026-01-02T03:04:05.Z", "2026-01-02T03:04:05+0100", "yesterday"}) {
    EXPECT_EQ(ParseRfc3339(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(FormatRfc3339({1767323045, 123456789}), "2026-01-02T03:04:05Z");
  EXPECT_EQ(ParseTime("2026-01-02T04:04:05.5+01:00"),
            std::chrono::system_clock::time_point(std::chrono::seconds(1767323045)));
  EXPECT_EQ(ParseTime("yesterday"), std::nullopt);
  EXPECT_EQ(FormatRfc3339({1767323045, 123456789}, 6), "2026-01-02T03:04:05.123456Z");
}

}  // namespace
TEST(GoDuration, ParsesAndFormatsAsGoDoes) {
  EXPECT_EQ(ParseGoDuration("10s"), 10'000'000'000);
  EXPECT_EQ(ParseGoDuration("1h2m3.5s"), 3'723'500'000'000);
  EXPECT_EQ(ParseGoDuration("300ms"), 300'000'000);
  EXPECT_EQ(ParseGoDuration("-1.5h"), -5'400'000'000'000);
  EXPECT_EQ(ParseGoDuration("1\xc2\xb5s"), 1000);
  EXPECT_EQ(ParseGoDuration("0"), 0);
  for (std::string_view bad : {"", "10", "s", "1x", ".s", "1e3s", "9999999999h"})
    EXPECT_FALSE(ParseGoDuration(bad).has_value()) << bad;
  EXPECT_EQ(FormatGoDuration(0), "0s");
  EXPECT_EQ(FormatGoDuration(10'000'000'000), "10s");
  EXPECT_EQ(FormatGoDuration(3'723'500'000'000), "1h2m3.5s");
  EXPECT_EQ(FormatGoDuration(120'000'000'000), "2m0s");
  EXPECT_EQ(FormatGoDuration(1'500'000), "1.5ms");
  EXPECT_EQ(FormatGoDuration(-999), "-999ns");
}

}  // namespace kiso
