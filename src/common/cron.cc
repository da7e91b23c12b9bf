#include "common/cron.h"

#include <absl/time/civil_time.h>
#include <absl/time/time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

namespace kiso {

namespace {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

struct Bounds {
  int min, max;
  const std::array<std::string_view, 13>* names;  // Index = value; null: numbers only.
  std::string_view what;
};

constexpr std::array<std::string_view, 13> kMonths = {
    "", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 13> kWeekdays = {
    "sun", "mon", "tue", "wed", "thu", "fri", "sat", "", "", "", "", "", ""};

Result<int> Value(std::string_view s, const Bounds& b) {
  if (b.names != nullptr) {
    std::string lower(s);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (size_t i = 0; i < b.names->size(); ++i) {
      if (!(*b.names)[i].empty() && (*b.names)[i] == lower) return static_cast<int>(i);
    }
  }
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    return MakeStatus(Code::kInvalidArgument, "failed to parse int from {}", s);
  return v;
}

// One field into `bits` (sized max+1); `any` set for `*` and `?`.
template <size_t N>
Status ParseField(std::string_view field, const Bounds& b, std::bitset<N>& bits, bool& any) {
  any = false;
  for (std::string_view part : Split(field, ',')) {
    auto slash = Split(part, '/');
    if (slash.size() > 2) return MakeStatus(Code::kInvalidArgument, "too many slashes: {}", part);
    auto dash = Split(slash[0], '-');
    if (dash.size() > 2) return MakeStatus(Code::kInvalidArgument, "too many hyphens: {}", part);
    int lo = 0, hi = 0, step = 1;
    bool star = false;
    if (slash[0] == "*" || slash[0] == "?") {
      lo = b.min;
      hi = b.max;
      star = true;
    } else {
      KISO_ASSIGN_OR_RETURN(lo, Value(dash[0], b));
      if (dash.size() == 2) {
        KISO_ASSIGN_OR_RETURN(hi, Value(dash[1], b));
      } else {
        hi = lo;
      }
    }
    if (slash.size() == 2) {
      KISO_ASSIGN_OR_RETURN(step, Value(slash[1], Bounds{0, 0, nullptr, ""}));
      if (step <= 0) {
        return MakeStatus(Code::kInvalidArgument, "step of range should be a positive number: {}",
                          part);
      }
      if (dash.size() == 1 && !star) hi = b.max;  // "a/n": from a to the end.
      star = false;                               // "*/n" restricts.
    }
    if (lo < b.min) {
      return MakeStatus(Code::kInvalidArgument, "beginning of range ({}) below minimum ({}): {}",
                        lo, b.min, part);
    }
    if (hi > b.max) {
      return MakeStatus(Code::kInvalidArgument, "end of range ({}) above maximum ({}): {}", hi,
                        b.max, part);
    }
    if (lo > hi) {
      return MakeStatus(Code::kInvalidArgument,
                        "beginning of range ({}) beyond end of range ({}): {}", lo, hi, part);
    }
    for (int v = lo; v <= hi; v += step) bits.set(static_cast<size_t>(v));
    any = any || star;
  }
  return Status::Ok();
}

// Go's time.ParseDuration, to whole seconds (robfig: at least one).
Result<std::chrono::seconds> ParseEvery(std::string_view s) {
  const std::string_view original = s;
  if (s.empty()) return MakeStatus(Code::kInvalidArgument, "failed to parse duration @every {}", s);
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    std::string number(s.substr(0, i));
    size_t j = i;
    while (j < s.size() && !std::isdigit(static_cast<unsigned char>(s[j])) && s[j] != '.') ++j;
    std::string_view unit = s.substr(i, j - i);
    char* end = nullptr;
    long double n = number.empty() ? -1 : std::strtold(number.c_str(), &end);
    long double scale = unit == "h"                    ? 3600
                        : unit == "m"                  ? 60
                        : unit == "s"                  ? 1
                        : unit == "ms"                 ? 1e-3
                        : unit == "us" || unit == "µs" ? 1e-6
                        : unit == "ns"                 ? 1e-9
                                                       : -1;
    if (n < 0 || scale < 0 || end != number.c_str() + number.size())
      return MakeStatus(Code::kInvalidArgument, "failed to parse duration @every {}", original);
    total += n * scale;
    if (total > 1e10) return MakeStatus(Code::kInvalidArgument, "duration too long: {}", original);
    s.remove_prefix(j);
  }
  return std::chrono::seconds(std::max<int64_t>(1, static_cast<int64_t>(total)));
}

std::optional<absl::TimeZone> Zone(std::string_view name) {
  if (name.empty() || name == "Local") return absl::LocalTimeZone();
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(std::string(name), &tz)) return std::nullopt;
  return tz;
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view text) {
  CronSchedule s;
  auto fields = Fields(text);
  if (fields.empty()) return MakeStatus(Code::kInvalidArgument, "empty spec string");
  std::string spec;
  if (fields[0].starts_with('@')) {
    if (fields[0] == "@every") {
      if (fields.size() != 2)
        return MakeStatus(Code::kInvalidArgument, "@every takes one duration: {}", text);
      KISO_ASSIGN_OR_RETURN(s.every_, ParseEvery(fields[1]));
      return s;
    }
    if (fields.size() != 1)
      return MakeStatus(Code::kInvalidArgument, "unrecognized descriptor: {}", text);
    std::string_view d = fields[0];
    if (d == "@yearly" || d == "@annually") {
      spec = "0 0 1 1 *";
    } else if (d == "@monthly") {
      spec = "0 0 1 * *";
    } else if (d == "@weekly") {
      spec = "0 0 * * 0";
    } else if (d == "@daily" || d == "@midnight") {
      spec = "0 0 * * *";
    } else if (d == "@hourly") {
      spec = "0 * * * *";
    } else {
      return MakeStatus(Code::kInvalidArgument, "unrecognized descriptor: {}", d);
    }
    fields = Fields(spec);
  }
  if (fields.size() != 5) {
    return MakeStatus(Code::kInvalidArgument, "expected exactly 5 fields, found {}: {}",
                      fields.size(), text);
  }
  bool any = false;
  KISO_RETURN_IF_ERROR(ParseField(fields[0], Bounds{0, 59, nullptr, "minute"}, s.minutes_, any));
  KISO_RETURN_IF_ERROR(ParseField(fields[1], Bounds{0, 23, nullptr, "hour"}, s.hours_, any));
  KISO_RETURN_IF_ERROR(
      ParseField(fields[2], Bounds{1, 31, nullptr, "day of month"}, s.days_, s.any_day_));
  KISO_RETURN_IF_ERROR(ParseField(fields[3], Bounds{1, 12, &kMonths, "month"}, s.months_, any));
  KISO_RETURN_IF_ERROR(
      ParseField(fields[4], Bounds{0, 6, &kWeekdays, "day of week"}, s.weekdays_, s.any_weekday_));
  return s;
}

std::optional<CronSchedule::Time> CronSchedule::Next(Time after, std::string_view time_zone) const {
  if (every_.count() > 0) {
    // robfig's constant delay: `after` plus the delay, to the whole second.
    auto t = after + every_;
    return std::chrono::floor<std::chrono::seconds>(t);
  }
  auto tz = Zone(time_zone);
  if (!tz) return std::nullopt;
  const absl::Time start = absl::FromChrono(after);
  // The first whole minute strictly after `after`.
  absl::CivilMinute c = absl::ToCivilMinute(start, *tz) + 1;
  const absl::CivilYear limit = absl::CivilYear(c) + 5;
  auto weekday = [](absl::CivilDay d) {
    // absl: Monday is 0 … Sunday 6; cron: Sunday is 0.
    return (static_cast<int>(absl::GetWeekday(d)) + 1) % 7;
  };
  while (absl::CivilYear(c) < limit) {
    if (!months_.test(static_cast<size_t>(c.month()))) {
      c = absl::CivilMinute(absl::CivilMonth(c) + 1);
      continue;
    }
    const absl::CivilDay day(c);
    const bool dom = days_.test(static_cast<size_t>(c.day()));
    const bool dow = weekdays_.test(static_cast<size_t>(weekday(day)));
    if (!((any_day_ || any_weekday_) ? (dom && dow) : (dom || dow))) {
      c = absl::CivilMinute(day + 1);
      continue;
    }
    if (!hours_.test(static_cast<size_t>(c.hour()))) {
      c = absl::CivilMinute(absl::CivilHour(c) + 1);
      continue;
    }
    if (!minutes_.test(static_cast<size_t>(c.minute()))) {
      c += 1;
      continue;
    }
    // A wall time the zone skips (spring forward) runs at the transition; one it
    // repeats (fall back) runs once, the first time.
    const absl::TimeZone::TimeInfo info = tz->At(absl::CivilSecond(c));
    const absl::Time t = info.kind == absl::TimeZone::TimeInfo::SKIPPED ? info.trans : info.pre;
    if (t > start) return absl::ToChronoTime(t);
    c += 1;
  }
  return std::nullopt;
}

bool KnownTimeZone(std::string_view name) { return Zone(name).has_value(); }

std::string FormatInZone(CronSchedule::Time t, std::string_view time_zone) {
  auto tz = Zone(time_zone);
  if (!tz) tz = absl::UTCTimeZone();
  std::string s = absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", absl::FromChrono(t), *tz);
  if (s.ends_with("+00:00")) s.replace(s.size() - 6, 6, "Z");
  return s;
}

}  // namespace kiso
