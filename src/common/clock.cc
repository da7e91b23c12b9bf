#include "common/clock.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <iterator>

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

std::string NowRfc3339Micro() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return FormatRfc3339(WallTime{ts.tv_sec, static_cast<int32_t>(ts.tv_nsec)}, 6);
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

std::string FormatRfc3339(std::chrono::system_clock::time_point t) {
  return FormatRfc3339(
      WallTime{std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count(), 0});
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

namespace kiso {

std::optional<int64_t> ParseGoDuration(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return 0;
  if (text.empty()) return std::nullopt;
  static constexpr std::pair<std::string_view, long double> kUnits[] = {
      {"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
      {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
  long double total = 0;
  while (!text.empty()) {
    size_t digits = 0;
    bool dot = false;
    while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) ||
                                    (text[digits] == '.' && !dot))) {
      dot = dot || text[digits] == '.';
      ++digits;
    }
    if (digits == 0 || (digits == 1 && dot)) return std::nullopt;
    long double number = std::strtold(std::string(text.substr(0, digits)).c_str(), nullptr);
    text.remove_prefix(digits);
    size_t unit_len = 0;
    while (unit_len < text.size() && !std::isdigit(static_cast<unsigned char>(text[unit_len])) &&
           text[unit_len] != '.')
      ++unit_len;
    std::string_view unit = text.substr(0, unit_len);
    text.remove_prefix(unit_len);
    auto it = std::find_if(std::begin(kUnits), std::end(kUnits),
                           [&](const auto& u) { return u.first == unit; });
    if (it == std::end(kUnits)) return std::nullopt;
    total += number * it->second;
    if (total > 9.2e18L) return std::nullopt;
  }
  auto ns = static_cast<int64_t>(total + 0.5L);
  return negative ? -ns : ns;
}

std::string FormatGoDuration(int64_t ns) {
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  uint64_t u = ns < 0 ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  // "whole[.fraction]" with the fraction's trailing zeros dropped.
  auto decimal = [](uint64_t whole, uint64_t fraction, int width) {
    std::string out = std::to_string(whole);
    if (fraction == 0) return out;
    std::string f = std::to_string(fraction);
    f.insert(0, static_cast<size_t>(width) - f.size(), '0');
    while (!f.empty() && f.back() == '0') f.pop_back();
    return out + "." + f;
  };
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1000000) return sign + decimal(u / 1000, u % 1000, 3) + "\xc2\xb5s";
  if (u < 1000000000) return sign + decimal(u / 1000000, u % 1000000, 6) + "ms";
  uint64_t hours = u / 3600000000000ULL;
  uint64_t minutes = (u / 60000000000ULL) % 60;
  uint64_t seconds_ns = u % 60000000000ULL;
  std::string out = sign;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (hours > 0 || minutes > 0) out += std::to_string(minutes) + "m";
  return out + decimal(seconds_ns / 1000000000, seconds_ns % 1000000000, 9) + "s";
}

}  // namespace kiso
