#include "common/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace kiso {
namespace {

namespace fs = std::filesystem;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmpdir = getenv("TMPDIR");
    std::string pattern = std::string(tmpdir ? tmpdir : "/tmp") + "/kiso-file-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileTest, WritesWholeFilesWithTheModeAndLeavesNoTemporaryOne) {
  const std::string path = dir_ + "/state";
  ASSERT_TRUE(WriteFileAtomic(path, "one", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two", 0600, /*durable=*/false).ok());
  EXPECT_EQ(*ReadFile(path), "two");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
  // Into a directory that is not there: an error, nothing made.
  EXPECT_FALSE(WriteFileAtomic(dir_ + "/none/state", "x").ok());
}

// Writers of one file at once (a container's start and a status check, each
// recording the start): each succeeds, and the file is one writer's whole.
TEST_F(FileTest, WritersAtOnceEachSucceedAndOneWholeFileStays) {
  const std::string path = dir_ + "/started_at";
  std::vector<std::thread> writers;
  writers.reserve(4);
  std::atomic<int> failures{0};
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      const std::string mine(100 + w, static_cast<char>('a' + w));
      for (int i = 0; i < 300; ++i) {
        if (!WriteFileAtomic(path, mine, 0644, /*durable=*/false).ok()) ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::string got = *ReadFile(path);
  ASSERT_GE(got.size(), 100u);
  EXPECT_EQ(got, std::string(got.size(), got[0]));
  EXPECT_EQ(got.size(), 100u + static_cast<size_t>(got[0] - 'a'));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

}  // namespace
}  // namespace kiso
