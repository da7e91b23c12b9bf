#include "store/watch_channel.h"

#include <gtest/gtest.h>

namespace kiso::store {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

WatchEvent Event(Revision rev) {
  return {WatchEvent::Type::kPut, {.key = "k", .mod_revision = rev}, {}};
}

TEST(WatchChannelTest, DeliversPushedEventsInOrder) {
  WatchChannel ch(10);
  EXPECT_TRUE(ch.Push({Event(1), Event(2)}));
  EXPECT_TRUE(ch.Push({Event(3)}));
  auto got = ch.Next(steady_clock::now());
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[2].kv.mod_revision, 3);
}

TEST(WatchChannelTest, NextReturnsEmptyAtTheDeadline) {
  WatchChannel ch(10);
  auto got = ch.Next(steady_clock::now() + milliseconds(1));
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST(WatchChannelTest, OverflowEndsTheWatchInsteadOfBlocking) {
  WatchChannel ch(2);
  EXPECT_TRUE(ch.Push({Event(1), Event(2)}));
  EXPECT_TRUE(ch.Push({Event(3)}));  // Accepted by ending the watch, not by waiting.
  EXPECT_FALSE(ch.Push({Event(4)}));
  auto got = ch.Next(steady_clock::now());
  EXPECT_EQ(got.status().code(), Code::kResourceExhausted);
}

TEST(WatchChannelTest, ReplaysHistoryBeforeLiveEvents) {
  WatchChannel ch(10);
  ch.SetReplay(
      [](Revision after, Revision up_to) -> Result<WatchChannel::ReplayChunk> {
        // Two chunks: (0, 1] then (1, 2].
        Revision to = std::min(up_to, after + 1);
        return WatchChannel::ReplayChunk{{Event(to)}, to};
      },
      0, 2);
  EXPECT_TRUE(ch.Push({Event(3)}));
  std::vector<Revision> seen;
  while (seen.size() < 3) {
    auto got = ch.Next(steady_clock::now() + milliseconds(100));
    ASSERT_TRUE(got.ok());
    for (auto& e : *got) seen.push_back(e.kv.mod_revision);
  }
  EXPECT_EQ(seen, (std::vector<Revision>{1, 2, 3}));
}

TEST(WatchChannelTest, ReplayErrorEndsTheWatch) {
  WatchChannel ch(10);
  ch.SetReplay(
      [](Revision, Revision) -> Result<WatchChannel::ReplayChunk> {
        return Status(Code::kCompacted, "gone");
      },
      0, 5);
  EXPECT_EQ(ch.Next(steady_clock::now()).status().code(), Code::kCompacted);
}

TEST(WatchChannelTest, CancelWakesTheConsumer) {
  WatchChannel ch(10);
  ch.Cancel();
  EXPECT_EQ(ch.Next(steady_clock::now() + std::chrono::hours(1)).status().code(), Code::kCancelled);
  EXPECT_FALSE(ch.Push({Event(1)}));
}

}  // namespace
}  // namespace kiso::store
