// Clock: the seam between kiso and time. Production code asks a Clock; tests
// hand in a FakeClock and advance it, so nothing sleeps to wait.
#pragma once

#include <chrono>
#include <mutex>

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
