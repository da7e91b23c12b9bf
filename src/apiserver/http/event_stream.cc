// PumpEvents: an EventStream driven by a thread that waits for its wake-ups.
#include <condition_variable>
#include <mutex>

#include "apiserver/http/http.h"

namespace kiso::apiserver {

void PumpEvents(EventStream& events, StreamWriter& out) {
  // A thread's chunk: the writer blocks anyway, so any size it takes.
  constexpr size_t kChunk = size_t{1} << 20;
  struct Signal {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
  };
  auto signal = std::make_shared<Signal>();
  auto wake = [signal] {
    std::lock_guard lock(signal->mu);
    signal->woken = true;
    signal->cv.notify_all();
  };
  out.OnCancel(wake);
  events.Start(wake);
  // Stopping() is checked at least this often (writers without OnCancel).
  constexpr auto kCheck = std::chrono::seconds(1);
  while (!out.Stopping()) {
    EventStream::Pulled p = events.Pull(kChunk);
    if (!p.data.empty() && !out.Write(p.data)) break;
    if (p.done) break;
    if (p.data.size() >= kChunk) continue;  // There may be more ready.
    std::unique_lock lock(signal->mu);
    auto until = std::min(p.next, std::chrono::steady_clock::now() + kCheck);
    signal->cv.wait_until(lock, until, [&] { return signal->woken; });
    signal->woken = false;
  }
  events.Cancel();
}

}  // namespace kiso::apiserver
