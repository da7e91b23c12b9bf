// CronSchedule: a CronJob's schedule, as Kubernetes reads it (the standard
// cron parser of robfig/cron, which kube-controller-manager uses): five
// fields — minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
// JAN-DEC), day of week (0-6 or SUN-SAT) — each `*` or `?`, a value, a range
// `a-b`, a step `*/n`, `a/n` or `a-b/n`, or a list of these; or one of the
// macros @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly,
// or `@every <duration>` (Go's duration syntax, whole seconds). Day of month
// and day of week: when either is `*` or `?` both must match, otherwise either
// one (cron's rule). Times are read in an IANA time zone (the system's tz
// database, through Abseil).
#pragma once

#include <array>
#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso {

class CronSchedule {
 public:
  using Time = std::chrono::system_clock::time_point;

  // InvalidArgument with what is wrong ("expected exactly 5 fields, found 4").
  static Result<CronSchedule> Parse(std::string_view text);

  // The first activation strictly after `after`, the fields read as wall-clock
  // time in `time_zone` ("" or "Local": the machine's zone); nullopt if there
  // is none within five years (February 30th) or the zone is unknown.
  std::optional<Time> Next(Time after, std::string_view time_zone) const;

 private:
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;           // 1-31.
  std::bitset<13> months_;         // 1-12.
  std::bitset<7> weekdays_;        // 0 = Sunday.
  bool any_day_ = false;           // Day of month was `*` or `?`.
  bool any_weekday_ = false;       // Day of week was `*` or `?`.
  std::chrono::seconds every_{0};  // @every: a constant delay instead of the fields.
};

// Whether `name` is a time zone of the system's tz database ("" and "Local" are).
bool KnownTimeZone(std::string_view name);

// `t` as RFC 3339 in `time_zone` ("2026-12-03T12:00:00+01:00"; UTC as "Z").
std::string FormatInZone(CronSchedule::Time t, std::string_view time_zone);

}  // namespace kiso
