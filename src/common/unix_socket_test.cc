#include "common/unix_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

namespace kiso {
namespace {

namespace fs = std::filesystem;

class UnixSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Deeper than a socket address holds (108 bytes).
    dir_ = fs::temp_directory_path() / fmt::format("kiso-unix-{}", getpid()) /
           std::string(60, 'a') / std::string(60, 'b');
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_.parent_path().parent_path(), ec);
  }
  fs::path dir_;
};

TEST_F(UnixSocketTest, ListensAndDialsPastTheAddressLimitAndPassesADescriptor) {
  ASSERT_GT(dir_.string().size(), 108u);
  auto listener = ListenUnix(dir_, "s.sock");
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  EXPECT_EQ(fs::status(dir_ / "s.sock").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::owner_exec);
  auto client = DialUnix(dir_, "s.sock");
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  int server = accept4(*listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(server, 0);

  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  ASSERT_TRUE(SendFd(server, 't', pipe_fds[1]).ok());
  close(pipe_fds[1]);
  auto got = ReceiveFd(*client, std::chrono::seconds(5));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->tag, 't');
  ASSERT_GE(got->fd, 0);
  ASSERT_EQ(write(got->fd, "x", 1), 1);  // The same pipe, through the passed copy.
  close(got->fd);
  char c = 0;
  ASSERT_EQ(read(pipe_fds[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  close(pipe_fds[0]);

  ASSERT_TRUE(SendFd(server, 'p', -1).ok());  // A tag alone.
  auto plain = ReceiveFd(*client, std::chrono::seconds(5));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->tag, 'p');
  EXPECT_EQ(plain->fd, -1);

  auto nothing = ReceiveFd(*client, std::chrono::milliseconds(10));
  EXPECT_EQ(nothing.status().code(), Code::kDeadlineExceeded);
  close(server);
  close(*client);
  close(*listener);
}

TEST_F(UnixSocketTest, DialingNothingSaysWhere) {
  auto client = DialUnix(dir_, "none.sock");
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kUnavailable);
  EXPECT_NE(client.status().message().find("none.sock"), std::string::npos);
}

}  // namespace
}  // namespace kiso
