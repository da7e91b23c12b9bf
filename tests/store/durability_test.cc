// Nothing acknowledged is ever lost: a child process writes and reports each
// acknowledged write; it is killed with SIGKILL at random moments, 25 times,
// each time reopening the same database. After every kill the store must hold
// every acknowledged write at its revision, have no revision gaps above the
// compaction point, and its watch replay must rebuild exactly its data.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <random>
#include <sstream>

#include "store/store.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace kiso::store {
namespace {

struct Ack {
  std::string key;
  std::optional<std::string> value;  // nullopt: a deletion
};

TEST(DurabilityTest, AcknowledgedWritesSurviveKillNine) {
  const char* build = std::getenv("KISO_BUILD_DIR");
  if (build == nullptr) build = KISO_BUILD_DIR_DEFAULT;
  std::string writer = std::string(build) + "/tests/store/store_crash_writer";
  testing::TempDir dir("durability");
  std::string url = "sqlite://" + dir.File("kiso.db");
  std::map<Revision, std::vector<Ack>> acked;
  Revision compacted = 0;
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
      std::vector<std::string> lines;
      for (int i = 0; i < wait_for && child.ReadLine(&line); ++i) lines.push_back(line);
      child.Kill(SIGKILL);
      while (child.ReadLine(&line)) lines.push_back(line);
      for (const std::string& l : lines) {
        std::istringstream in(l);
        std::string kind, key, value;
        Revision rev = 0;
        in >> kind >> rev;
        if (kind == "compact") {
          compacted = std::max(compacted, rev);
          continue;
        }
        in >> key;
        if (kind == "put") {
          in >> value;
          acked[rev].push_back({key, value});
        } else {
          acked[rev].push_back({key, std::nullopt});
        }
      }
    }
    auto opened = OpenStore(url);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Store& store = **opened;
    Revision current = *store.CurrentRevision();
    ASSERT_FALSE(acked.empty());
    ASSERT_GE(current, acked.rbegin()->first) << "an acknowledged revision is missing";
    // Every acknowledged write above the compaction point, at its revision.
    for (auto it = acked.upper_bound(compacted); it != acked.end(); ++it) {
      for (const Ack& a : it->second) {
        auto got = store.Get(a.key, it->first);
        if (a.value) {
          ASSERT_TRUE(got.ok()) << a.key << "@" << it->first << ": " << got.status().ToString();
          EXPECT_EQ(got->value, *a.value);
          EXPECT_EQ(got->mod_revision, it->first);
        } else {
          EXPECT_EQ(got.status().code(), Code::kNotFound) << a.key << "@" << it->first;
        }
      }
    }
    // Watch replay from the compaction point: no gaps, and replaying it over
    // the snapshot at that point rebuilds the current data exactly.
    auto base = store.Range(KeyRange::Prefix("/d/"), {.revision = compacted});
    ASSERT_TRUE(base.ok()) << base.status().ToString();
    std::map<std::string, std::string> data;
    for (const auto& kv : base->kvs) data[kv.key] = kv.value;
    auto watch = store.WatchRange(KeyRange::Prefix("/d/"), compacted, {});
    ASSERT_TRUE(watch.ok()) << watch.status().ToString();
    Revision last = compacted;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (last < current && std::chrono::steady_clock::now() < deadline) {
      auto events = (*watch)->Next(deadline);
      ASSERT_TRUE(events.ok()) << events.status().ToString();
      for (const auto& e : *events) {
        ASSERT_TRUE(e.kv.mod_revision == last || e.kv.mod_revision == last + 1)
            << "revision gap after " << last << ": next event at " << e.kv.mod_revision;
        last = e.kv.mod_revision;
        if (e.type == WatchEvent::Type::kPut) {
          data[e.kv.key] = e.kv.value;
        } else {
          data.erase(e.kv.key);
        }
      }
    }
    ASSERT_EQ(last, current);
    auto now = store.Range(KeyRange::Prefix("/d/"), {});
    ASSERT_TRUE(now.ok());
    std::map<std::string, std::string> expected;
    for (const auto& kv : now->kvs) expected[kv.key] = kv.value;
    for (const auto& [key, value] : expected) {
      auto it = data.find(key);
      EXPECT_TRUE(it != data.end() && it->second == value)
          << key << " is " << value.substr(0, 12) << " now; replay gives "
          << (it == data.end() ? "nothing" : it->second.substr(0, 12));
    }
    for (const auto& [key, value] : data) {
      EXPECT_TRUE(expected.count(key))
          << key << " is gone now; replay gives " << value.substr(0, 12) << " (compacted at "
          << compacted << ")";
    }
  }
  EXPECT_GT(acked.size(), size_t{kRounds} * 5);
}

}  // namespace
}  // namespace kiso::store
