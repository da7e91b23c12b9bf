// Clock: the seam between kiso and time. Production code asks a Clock; tests
// hand in a FakeClock and advance it, so nothing sleeps to wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace kiso {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic now. Thread-safe.
  virtual TimePoint Now() const = 0;
  // Wall-clock now (calendar time: schedules, timestamps). Thread-safe.
  virtual std::chrono::system_clock::time_point WallNow() const = 0;
  // The process-wide real clock; never null, never destroyed.
  static Clock* Real();
};

// Wall-clock now as RFC 3339 in UTC, to the second (Kubernetes' Time) and with
// nanoseconds (CRI log lines).
std::string NowRfc3339();
std::string NowRfc3339Nano();
std::string NowRfc3339Micro();  // Kubernetes' MicroTime (Lease times, Event series).

// A wall-clock instant as Kubernetes' times carry it (protobuf's Timestamp).
struct WallTime {
  int64_t seconds = 0;  // Since the Unix epoch.
  int32_t nanos = 0;    // 0 ≤ nanos < 1e9.
  bool operator==(const WallTime&) const = default;
};
// Parses RFC 3339 ("2006-01-02T15:04:05Z", fractions and offsets allowed), as
// Go's time.Parse(time.RFC3339) does; nullopt on anything else.
std::optional<WallTime> ParseRfc3339(std::string_view text);
// The same as a system-clock instant, to the second (what Kubernetes' Time holds).
std::optional<std::chrono::system_clock::time_point> ParseTime(std::string_view text);
// Formats in UTC with `digits` fraction digits (0: Time, 6: MicroTime, 9: nanoseconds).
std::string FormatRfc3339(WallTime t, int digits = 0);
// A system_clock instant as a Kubernetes Time (whole seconds, UTC).
std::string FormatRfc3339(std::chrono::system_clock::time_point t);
// Go's time.Duration text ("1h2m3.5s", "300ms", "-1.5h"; units ns us µs ms s m h) in
// nanoseconds; nullopt when it is not one or overflows.
std::optional<int64_t> ParseGoDuration(std::string_view text);
// Nanoseconds as Go's Duration.String() writes them ("1h2m3.5s", "10s", "0s").
std::string FormatGoDuration(int64_t ns);

// A clock that moves only when told. Thread-safe.
class FakeClock : public Clock {
 public:
  TimePoint Now() const override;
  std::chrono::system_clock::time_point WallNow() const override;
  // Moves both clocks.
  void Advance(std::chrono::nanoseconds by);
  // Sets the wall clock (the monotonic one keeps its course).
  void SetWall(std::chrono::system_clock::time_point wall);

 private:
  mutable std::mutex mu_;
  TimePoint now_{std::chrono::hours(1)};                                           // guarded by mu_
  std::chrono::system_clock::time_point wall_{std::chrono::hours(24 * 365 * 56)};  // guarded by mu_
};

}  // namespace kiso
