#include "common/cron.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace kiso {
namespace {

using Time = CronSchedule::Time;

Time At(std::string_view rfc3339) {
  auto t = ParseTime(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(Time{});
}

std::string NextOf(std::string_view spec, std::string_view after, std::string_view tz = "UTC") {
  auto s = CronSchedule::Parse(spec);
  EXPECT_TRUE(s.ok()) << spec << ": " << s.status().ToString();
  if (!s.ok()) return "";
  auto n = s->Next(At(after), tz);
  return n ? FormatInZone(*n, tz) : "none";
}

TEST(CronSchedule, FieldsRangesStepsListsAndNames) {
  EXPECT_EQ(NextOf("* * * * *", "2026-12-03T11:20:30Z"), "2026-12-03T11:21:00Z");
  EXPECT_EQ(NextOf("* * * * *", "2026-12-03T11:21:00Z"),
            "2026-12-03T11:22:00Z");  // Strictly after.
  EXPECT_EQ(NextOf("*/15 * * * *", "2026-12-03T11:20:00Z"), "2026-12-03T11:30:00Z");
  EXPECT_EQ(NextOf("5,35 9-17/4 * * *", "2026-12-03T13:40:00Z"), "2026-12-03T17:05:00Z");
  EXPECT_EQ(NextOf("0 0 1 jan *", "2026-12-03T00:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NextOf("0 12 * * MON-FRI", "2026-12-04T12:00:00Z"),
            "2026-12-07T12:00:00Z");  // Fri → Mon.
  EXPECT_EQ(NextOf("30 4 ? * sun", "2026-12-03T00:00:00Z"), "2026-12-06T04:30:00Z");
  EXPECT_EQ(NextOf("0 0 29 2 *", "2026-12-03T00:00:00Z"), "2028-02-29T00:00:00Z");
  EXPECT_EQ(NextOf("0 0 30 2 *", "2026-12-03T00:00:00Z"), "none");
  EXPECT_EQ(NextOf("10/20 * * * *", "2026-12-03T11:31:00Z"), "2026-12-03T11:50:00Z");  // 10,30,50.
}

// Cron's rule: both day fields restricted → either matches; one of them `*` → both must.
TEST(CronSchedule, DayOfMonthAndDayOfWeek) {
  // The 13th, or any Friday: Friday 2026-12-04 comes first.
  EXPECT_EQ(NextOf("0 0 13 * 5", "2026-12-03T00:00:00Z"), "2026-12-04T00:00:00Z");
  // The 13th and `*`: only the 13th.
  EXPECT_EQ(NextOf("0 0 13 * *", "2026-12-03T00:00:00Z"), "2026-12-13T00:00:00Z");
  // `*/2` in day of month restricts: the odd days or Sundays.
  EXPECT_EQ(NextOf("0 0 */2 * 0", "2026-12-03T00:00:01Z"), "2026-12-05T00:00:00Z");
}

TEST(CronSchedule, Macros) {
  EXPECT_EQ(NextOf("@hourly", "2026-12-03T11:20:00Z"), "2026-12-03T12:00:00Z");
  EXPECT_EQ(NextOf("@daily", "2026-12-03T11:20:00Z"), "2026-12-04T00:00:00Z");
  EXPECT_EQ(NextOf("@midnight", "2026-12-03T11:20:00Z"), "2026-12-04T00:00:00Z");
  EXPECT_EQ(NextOf("@weekly", "2026-12-03T11:20:00Z"), "2026-12-06T00:00:00Z");
  EXPECT_EQ(NextOf("@monthly", "2026-12-03T11:20:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NextOf("@yearly", "2026-12-03T11:20:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NextOf("@annually", "2026-12-03T11:20:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NextOf("@every 90s", "2026-12-03T11:20:00Z"), "2026-12-03T11:21:30Z");
  EXPECT_EQ(NextOf("@every 1h30m", "2026-12-03T11:20:00Z"), "2026-12-03T12:50:00Z");
}

TEST(CronSchedule, TimeZones) {
  // 9:00 in New York is 14:00 UTC in winter and 13:00 in summer.
  auto s = CronSchedule::Parse("0 9 * * *");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(FormatInZone(*s->Next(At("2026-12-03T10:00:00Z"), "America/New_York"), "UTC"),
            "2026-12-03T14:00:00Z");
  EXPECT_EQ(FormatInZone(*s->Next(At("2026-07-03T10:00:00Z"), "America/New_York"), "UTC"),
            "2026-07-03T13:00:00Z");
  EXPECT_EQ(
      FormatInZone(*s->Next(At("2026-12-03T10:00:00Z"), "America/New_York"), "America/New_York"),
      "2026-12-03T09:00:00-05:00");
  // 2:30 does not exist on 2026-03-08 in New York: that day's run is at the jump (3:00 EDT).
  auto skipped = CronSchedule::Parse("30 2 * * *");
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(FormatInZone(*skipped->Next(At("2026-03-08T05:00:00Z"), "America/New_York"), "UTC"),
            "2026-03-08T07:00:00Z");
  // 1:30 happens twice on 2026-11-01: the job runs once.
  auto twice = CronSchedule::Parse("30 1 * * *");
  ASSERT_TRUE(twice.ok());
  auto first = twice->Next(At("2026-11-01T04:00:00Z"), "America/New_York");
  ASSERT_TRUE(first);
  EXPECT_EQ(FormatInZone(*first, "UTC"), "2026-11-01T05:30:00Z");
  EXPECT_EQ(FormatInZone(*twice->Next(*first, "America/New_York"), "UTC"), "2026-11-02T06:30:00Z");
  EXPECT_TRUE(KnownTimeZone("Europe/Berlin"));
  EXPECT_TRUE(KnownTimeZone(""));
  EXPECT_FALSE(KnownTimeZone("Mars/Olympus_Mons"));
  EXPECT_FALSE(s->Next(At("2026-12-03T10:00:00Z"), "Mars/Olympus_Mons"));
}

TEST(CronSchedule, BadSchedulesSayWhy) {
  auto why = [](std::string_view spec) {
    auto s = CronSchedule::Parse(spec);
    EXPECT_FALSE(s.ok()) << spec;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
    return s.ok() ? std::string() : s.status().message();
  };
  EXPECT_NE(why("* * * *").find("expected exactly 5 fields, found 4"), std::string::npos);
  EXPECT_NE(why("").find("empty spec string"), std::string::npos);
  EXPECT_NE(why("60 * * * *").find("above maximum (59)"), std::string::npos);
  EXPECT_NE(why("* * 0 * *").find("below minimum (1)"), std::string::npos);
  EXPECT_NE(why("5-1 * * * *").find("beyond end of range"), std::string::npos);
  EXPECT_NE(why("*/0 * * * *").find("positive number"), std::string::npos);
  EXPECT_NE(why("* * * foo *").find("failed to parse int from foo"), std::string::npos);
  EXPECT_NE(why("* * * * 7").find("above maximum (6)"), std::string::npos);
  EXPECT_NE(why("@fortnightly").find("unrecognized descriptor"), std::string::npos);
  EXPECT_NE(why("@every soon").find("failed to parse duration"), std::string::npos);
  why("1-2-3 * * * *");
  why("1/2/3 * * * *");
  why("-1 * * * *");
}

}  // namespace
}  // namespace kiso
