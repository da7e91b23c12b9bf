// Clock: the seam between kiso and time. Production code asks a Clock; tests
// hand in a FakeClock and advance it, so nothing sleeps to wait.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

namespace kiso {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic now. Thread-safe.
  virtual TimePoint Now() const = 0;
  // The process-wide real clock; never null, never destroyed.
  static Clock* Real();
};

// Wall-clock now as RFC 3339 in UTC, to the second (Kubernetes' Time) and with
// nanoseconds (CRI log lines).
std::string NowRfc3339();
std::string NowRfc3339Nano();

// A clock that moves only when told. Thread-safe.
class FakeClock : public Clock {
 public:
  TimePoint Now() const override;
  void Advance(std::chrono::nanoseconds by);

 private:
  mutable std::mutex mu_;
  TimePoint now_{std::chrono::hours(1)};
};

}  // namespace kiso
