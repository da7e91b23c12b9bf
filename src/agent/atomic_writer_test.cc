#include "agent/atomic_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "common/file.h"
#include "support/temp_dir.h"

namespace kiso::agent {
namespace {

namespace fs = std::filesystem;

std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

std::string Read(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "<missing>";
}

TEST(AtomicWriter, FilesAreLinksThroughDataToOnePayload) {
  testing::TempDir tmp("atomic");
  std::string dir = tmp.File("vol");
  auto w = WriteVolumeAtomically(dir, {{"a", {"1", 0600}}, {"sub/b", {"2", 0644}}});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(*w);
  EXPECT_EQ(Read(dir + "/a"), "1");
  EXPECT_EQ(Read(dir + "/sub/b"), "2");
  EXPECT_EQ(fs::read_symlink(dir + "/a").string(), "..data/a");
  EXPECT_EQ(fs::read_symlink(dir + "/sub").string(), "..data/sub");
  std::string payload = fs::read_symlink(dir + "/..data").string();
  EXPECT_TRUE(payload.starts_with("..20")) << payload;
  EXPECT_EQ(Entries(dir), (std::set<std::string>{"..data", payload, "a", "sub"}));
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600U);
}

TEST(AtomicWriter, AnEqualPayloadIsLeftAndAChangedOneSwapped) {
  testing::TempDir tmp("atomic");
  std::string dir = tmp.File("vol");
  ASSERT_TRUE(WriteVolumeAtomically(dir, {{"a", {"1"}}, {"b", {"2"}}}).ok());
  std::string first = fs::read_symlink(dir + "/..data").string();
  auto again = WriteVolumeAtomically(dir, {{"a", {"1"}}, {"b", {"2"}}});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(fs::read_symlink(dir + "/..data").string(), first);

  // A changed value, a removed key and a new one: one swap, the old payload gone.
  auto changed = WriteVolumeAtomically(dir, {{"a", {"10"}}, {"c", {"3"}}});
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  std::string second = fs::read_symlink(dir + "/..data").string();
  EXPECT_NE(second, first);
  EXPECT_EQ(Read(dir + "/a"), "10");
  EXPECT_EQ(Read(dir + "/c"), "3");
  EXPECT_EQ(Entries(dir), (std::set<std::string>{"..data", second, "a", "c"}));

  // Only a mode changed: a new payload too.
  auto mode = WriteVolumeAtomically(dir, {{"a", {"10", 0400}}, {"c", {"3"}}});
  ASSERT_TRUE(mode.ok());
  EXPECT_TRUE(*mode);
}

TEST(AtomicWriter, AGroupOwnsAndReadsEverything) {
  testing::TempDir tmp("atomic");
  std::string dir = tmp.File("vol");
  const gid_t group = ::getgid();
  ASSERT_TRUE(WriteVolumeAtomically(dir, {{"d/x", {"1", 0600}}}, group).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/d/x").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660U);
  ASSERT_EQ(::stat((dir + "/d").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_ISGID);
  auto again = WriteVolumeAtomically(dir, {{"d/x", {"1", 0600}}}, group);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // The group's bits are what was asked, not a change.
}

TEST(AtomicWriter, ReplacesFilesOfAnOlderLayoutAndRefusesBadPaths) {
  testing::TempDir tmp("atomic");
  std::string dir = tmp.File("vol");
  fs::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir + "/a", "old").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/gone", "old").ok());
  ASSERT_TRUE(WriteVolumeAtomically(dir, {{"a", {"new"}}}).ok());
  EXPECT_EQ(Read(dir + "/a"), "new");
  EXPECT_FALSE(fs::exists(dir + "/gone"));

  for (std::string bad : {"/abs", "", "..x", "a/../b", "a/..data"}) {
    auto r = WriteVolumeAtomically(dir, {{bad, {"x"}}});
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(Read(dir + "/a"), "new");  // Nothing changed.
}

}  // namespace
}  // namespace kiso::agent
