#include "apiserver/http/fair_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace kiso::apiserver {
namespace {

FairGateOptions Small() {
  FairGateOptions o;
  o.max_inflight = 4;
  o.max_mutating_inflight = 2;
  o.seats = 2;
  o.max_wait = std::chrono::milliseconds(100);
  return o;
}

TEST(FairGate, RefusesPastTheInFlightLimitsOfEachKind) {
  FairGate gate(Small());
  std::vector<FairGate::Ticket> held;
  for (int i = 0; i < 4; ++i) {
    auto t = gate.Enter("a", false);
    ASSERT_TRUE(t.has_value()) << i;  // One client alone keeps no share.
    held.push_back(std::move(*t));
  }
  EXPECT_FALSE(gate.Enter("a", false).has_value());
  EXPECT_FALSE(gate.Enter("b", false).has_value());
  // Mutating requests have their own limit.
  auto w1 = gate.Enter("a", true);
  auto w2 = gate.Enter("a", true);
  ASSERT_TRUE(w1 && w2);
  EXPECT_FALSE(gate.Enter("a", true).has_value());
  held.pop_back();  // A seat comes back…
  EXPECT_TRUE(gate.Enter("a", false).has_value());
}

TEST(FairGate, EachActiveClientRunsItsShareAndTheRestWaitTheirTurn) {
  FairGate gate(Small());
  // Client b is active too: a may run one request (2 seats / 2 flows) at once.
  { auto b = gate.Enter("b", false); }
  auto first = gate.Enter("a", false);
  ASSERT_TRUE(first);
  EXPECT_EQ(gate.active_flows(), 2);
  std::atomic<bool> second_in{false};
  std::thread waiter([&] {
    auto second = gate.Enter("a", false);  // Waits for a's first seat…
    second_in = second.has_value();
  });
  // …while b is not held up by it.
  auto b = gate.Enter("b", false);
  EXPECT_TRUE(b.has_value());
  EXPECT_EQ(gate.running("a"), 1);
  first.reset();  // …and gets it when the first request is done.
  waiter.join();
  EXPECT_TRUE(second_in);
}

TEST(FairGate, AWaitLongerThanItsLimitIsRefused) {
  FairGate gate(Small());
  { auto b = gate.Enter("b", false); }
  auto first = gate.Enter("a", false);
  ASSERT_TRUE(first);
  EXPECT_FALSE(gate.Enter("a", false).has_value());  // Its turn never comes within 100 ms.
  EXPECT_EQ(gate.running("a"), 1);
}

TEST(FairGate, ClosingRefusesTheWaitingAtOnceAndEveryoneAfter) {
  FairGateOptions o = Small();
  o.max_wait = std::chrono::hours(1);  // Only Close can end the wait in time.
  FairGate gate(o);
  { auto b = gate.Enter("b", false); }
  auto first = gate.Enter("a", false);
  ASSERT_TRUE(first);
  std::atomic<int> refused{0};
  std::thread waiter([&] {
    if (!gate.Enter("a", false)) ++refused;
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (gate.waiting("a") == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_EQ(gate.waiting("a"), 1);
  gate.Close();
  waiter.join();
  EXPECT_EQ(refused, 1);
  EXPECT_FALSE(gate.Enter("c", false).has_value());
  EXPECT_EQ(gate.running("a"), 1);  // What runs finishes as it would.
}

TEST(FairGate, ARequestAdmittedWithMoreOfItsFlowWaitingIsCrowded) {
  FairGateOptions o = Small();
  o.max_wait = std::chrono::seconds(30);
  o.active_window = std::chrono::seconds(60);  // b stays active however slow the run.
  FairGate gate(o);
  { auto b = gate.Enter("b", false); }  // Two flows: a's share is one seat.
  auto first = gate.Enter("a", false);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->crowded());  // Nothing of a's waited.
  std::atomic<int> admitted{0};
  std::atomic<int> crowded{0};
  std::vector<std::thread> waiters;
  waiters.reserve(2);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<FairGate::Ticket> tickets;
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&] {
      auto t = gate.Enter("a", false);
      if (!t) return;
      crowded += t->crowded() ? 1 : 0;
      std::lock_guard lock(mu);
      ++admitted;
      tickets.push_back(std::move(*t));
      cv.notify_all();
    });
  }
  // Both wait behind the first; once it leaves, one of them is admitted while
  // the other still waits (crowded), then the last with nothing behind it.
  while (gate.waiting("a") < 2) std::this_thread::yield();
  first.reset();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return admitted == 1; });
    tickets.clear();  // Its seat back: the last one's turn.
    cv.wait(lock, [&] { return admitted == 2; });
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(admitted.load(), 2);
  EXPECT_EQ(crowded.load(), 1);
}

TEST(FairGate, TryEnterSeatsOnlyWhatWouldNotWait) {
  FairGateOptions o = Small();
  o.active_window = std::chrono::seconds(60);  // b stays active however slow the run.
  FairGate gate(o);
  auto alone = gate.TryEnter("a", false);
  ASSERT_TRUE(alone);  // One client alone keeps no share.
  EXPECT_FALSE(alone->crowded());
  { auto b = gate.TryEnter("b", false); }  // Two flows now: a's share is one seat.
  EXPECT_FALSE(gate.TryEnter("a", false).has_value());
  EXPECT_EQ(gate.running("a"), 1);  // Refused without a trace:
  EXPECT_EQ(gate.waiting("a"), 0);  // it neither runs nor waits.
  auto b = gate.TryEnter("b", false);
  EXPECT_TRUE(b);  // The other client's seat is free.
  alone.reset();
  EXPECT_TRUE(gate.TryEnter("a", false).has_value());
  gate.Close();
  EXPECT_FALSE(gate.TryEnter("c", false).has_value());
}

TEST(FairGate, TryEnterRefusesPastTheInFlightLimit) {
  FairGate gate(Small());
  std::vector<FairGate::Ticket> held;
  for (int i = 0; i < 4; ++i) {
    auto t = gate.TryEnter("a", false);
    ASSERT_TRUE(t.has_value()) << i;
    held.push_back(std::move(*t));
  }
  EXPECT_FALSE(gate.TryEnter("a", false).has_value());
  EXPECT_FALSE(gate.TryEnter("b", false).has_value());
  EXPECT_TRUE(gate.TryEnter("b", true).has_value());  // Mutating: a limit of its own.
}

}  // namespace
}  // namespace kiso::apiserver
