// A full disk: on a size-limited tmpfs, writes fail with a clear error and
// change nothing, the store stays readable, accepts writes again once space is
// freed, and its file passes SQLite's integrity check throughout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>

#include "store/store.h"
#include "support/temp_dir.h"

namespace kiso::store {
namespace {

// Mounts a tmpfs of `bytes` on a fresh directory; unmounts when destroyed.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(size_t bytes) {
    std::string opts = "size=" + std::to_string(bytes);
    mounted_ = mount("kiso-test", dir_.path().c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  ~SmallTmpfs() {
    if (mounted_) umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  std::string File(const std::string& name) const { return dir_.File(name); }

 private:
  testing::TempDir dir_{"diskfull"};
  bool mounted_ = false;
};

TEST(DiskFullTest, WritesFailCleanlyAndResumeWhenSpaceIsFreed) {
  SmallTmpfs fs(3 << 20);
  if (!fs.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  {
    // Ballast to free later.
    std::ofstream ballast(fs.File("ballast"), std::ios::binary);
    ballast << std::string(1 << 20, 'b');
  }
  auto opened = OpenStore("sqlite://" + fs.File("kiso.db"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;

  std::map<std::string, std::string> acked;
  Status failure;
  const std::string value(4000, 'v');
  for (int i = 0; i < 5000 && failure.ok(); ++i) {
    std::string key = "/full/" + std::to_string(i);
    auto kv = store.Put(key, value);
    if (kv.ok()) {
      acked[key] = value;
    } else {
      failure = kv.status();
    }
  }
  ASSERT_FALSE(failure.ok()) << "the disk never filled";
  EXPECT_EQ(failure.code(), Code::kResourceExhausted) << failure.ToString();
  EXPECT_THAT(failure.message(), ::testing::HasSubstr("full"));
  EXPECT_THAT(failure.message(), ::testing::HasSubstr(fs.File("kiso.db")));
  Revision at_failure = *store.CurrentRevision();
  EXPECT_EQ(at_failure, static_cast<Revision>(acked.size()));

  // Still readable, and a failed write left nothing behind.
  auto all = store.Range(KeyRange::Prefix("/full/"), {});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->count, static_cast<int64_t>(acked.size()));
  EXPECT_EQ(store.Put("/full/again", value).status().code(), Code::kResourceExhausted);
  EXPECT_EQ(*store.CurrentRevision(), at_failure);

  // Free space: writes are accepted again.
  std::filesystem::remove(fs.File("ballast"));
  auto after = store.Put("/full/after", "ok");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->mod_revision, at_failure + 1);

  // Reopen: the integrity check at start-up passes and nothing acked is lost.
  opened->reset();
  auto reopened = OpenStore("sqlite://" + fs.File("kiso.db"));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  for (const auto& [key, v] : acked) {
    auto got = (*reopened)->Get(key);
    ASSERT_TRUE(got.ok()) << key;
    EXPECT_EQ(got->value, v);
  }
  EXPECT_EQ((*reopened)->Get("/full/after")->value, "ok");
}

}  // namespace
}  // namespace kiso::store
