// Nothing acknowledged is ever lost when the process dies: a child process
// writes and reports each acknowledged write; it is killed with SIGKILL at
// random moments, 25 times, each time reopening the same database. After every
// kill the store must hold every acknowledged write at its revision, have no
// revision gaps above the compaction point, and its watch replay must rebuild
// exactly its data. A kill leaves the page cache to the kernel, so this cannot
// tell whether the store fsyncs: power_cut_test.cc does.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <random>
#include <sstream>

#include "acked_writes.h"
#include "store/store.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace kiso::store {
namespace {

TEST(DurabilityTest, AcknowledgedWritesSurviveKillNine) {
  const char* build = std::getenv("KISO_BUILD_DIR");
  if (build == nullptr) build = KISO_BUILD_DIR_DEFAULT;
  std::string writer = std::string(build) + "/tests/store/store_crash_writer";
  testing::TempDir dir("durability");
  std::string url = "sqlite://" + dir.File("kiso.db");
  AckedWrites acked;
  std::mt19937 rng(std::random_device{}());
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    {
      testing::Subprocess child({writer, url, std::to_string(rng())}, true);
      std::string line;
      ASSERT_TRUE(child.ReadLine(&line));
      ASSERT_EQ(line, "ready");
      // Let it run for a random number of acknowledgements, then kill it
      // mid-flight; whatever it printed before dying was acknowledged.
      int wait_for = static_cast<int>(rng() % 600) + 10;
      for (int i = 0; i < wait_for && child.ReadLine(&line); ++i) acked.Add(line);
      child.Kill(SIGKILL);
      while (child.ReadLine(&line)) acked.Add(line);
    }
    auto opened = OpenStore(url);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ASSERT_FALSE(acked.empty());
    auto violations = acked.Violations(**opened);
    EXPECT_TRUE(violations.empty()) << ::testing::PrintToString(violations);
  }
  EXPECT_GT(acked.size(), size_t{kRounds} * 5);
}

}  // namespace
}  // namespace kiso::store
