#include "common/clock.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace kiso {
namespace {

class RealClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point WallNow() const override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();  // Never destroyed: safe at exit.
  return clock;
}

Clock::TimePoint FakeClock::Now() const {
  std::lock_guard lock(mu_);
  return now_;
}

std::chrono::system_clock::time_point FakeClock::WallNow() const {
  std::lock_guard lock(mu_);
  return wall_;
}

void FakeClock::Advance(std::chrono::nanoseconds by) {
  std::lock_guard lock(mu_);
  now_ += by;
  wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(by);
}

void FakeClock::SetWall(std::chrono::system_clock::time_point wall) {
  std::lock_guard lock(mu_);
  wall_ = wall;
}

std::string NowRfc3339Nano() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec);
}

std::string NowRfc3339() {
  time_t now = time(nullptr);
  tm t{};
  gmtime_r(&now, &t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
}

std::optional<WallTime> ParseRfc3339(std::string_view s) {
  auto digits = [&](size_t at, size_t n, int* out) {
    if (at + n > s.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 20 || !digits(0, 4, &year) || s[4] != '-' || !digits(5, 2, &month) ||
      s[7] != '-' || !digits(8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
      !digits(11, 2, &hour) || s[13] != ':' || !digits(14, 2, &minute) || s[16] != ':' ||
      !digits(17, 2, &second))
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59)
    return std::nullopt;
  size_t i = 19;
  int32_t nanos = 0;
  if (i < s.size() && s[i] == '.') {
    size_t start = ++i;
    int32_t scale = 100000000;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      nanos += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    if (i + 1 != s.size()) return std::nullopt;
  } else {
    int oh = 0, om = 0;
    if (i + 6 != s.size() || (s[i] != '+' && s[i] != '-') || !digits(i + 1, 2, &oh) ||
        s[i + 3] != ':' || !digits(i + 4, 2, &om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = (s[i] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
  }
  tm t{};
  t.tm_year = year - 1900;
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  t.tm_sec = second;
  time_t seconds = timegm(&t);
  if (t.tm_mday != day) return std::nullopt;  // 31 February and the like.
  return WallTime{static_cast<int64_t>(seconds) - offset, nanos};
}

std::optional<std::chrono::system_clock::time_point> ParseTime(std::string_view text) {
  auto w = ParseRfc3339(text);
  if (!w) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::seconds(w->seconds));
}

std::string FormatRfc3339(WallTime w, int digits) {
  time_t seconds = static_cast<time_t>(w.seconds);
  tm t{};
  gmtime_r(&seconds, &t);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.tm_year + 1900,
                                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
  if (digits > 0) {
    std::string fraction = fmt::format("{:09}", w.nanos);
    out += "." + fraction.substr(0, static_cast<size_t>(std::min(digits, 9)));
  }
  return out + "Z";
}

}  // namespace kiso
