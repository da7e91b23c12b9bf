// The WebAssembly engine and its WASI preview 1, on programs compiled from C
// by clang for wasm32-wasi at build time (testdata/*.c).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/wasm/engine.h"

namespace kiso::runtime::wasm {
namespace {

namespace fs = std::filesystem;

std::string BuildDir() {
  const char* env = std::getenv("KISO_BUILD_DIR");
  return env ? env : KISO_BUILD_DIR_DEFAULT;
}

std::string Program(const std::string& name) {
  return BuildDir() + "/src/runtime/wasm/" + name + ".wasm";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class WasmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiso-wasm-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `program` with `args`, its stdout and stderr into files.
  Result<WasmExit> Run(const std::string& program, std::vector<std::string> args = {},
                       WasmOptions options = {}) {
    options.module = Program(program);
    options.wasi.args.insert(options.wasi.args.begin(), program);
    for (auto& a : args) options.wasi.args.push_back(std::move(a));
    int out = open((dir_ / "stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = open((dir_ / "stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    options.wasi.stdout_fd = out;
    options.wasi.stderr_fd = err;
    auto r = RunWasm(options);
    close(out);
    close(err);
    return r;
  }
  std::string Stdout() const { return ReadFile(dir_ / "stdout"); }
  std::string Stderr() const { return ReadFile(dir_ / "stderr"); }

  fs::path dir_;
};

TEST_F(WasmTest, ArgumentsEnvironmentStdioAndExitCode) {
  WasmOptions options;
  options.wasi.env = {"GREETING=hi there"};
  auto r = Run("hello", {"7", "two words"}, options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->code, 7u);
  EXPECT_TRUE(r->trap.empty());
  EXPECT_EQ(Stdout(), "arg 0: hello\narg 1: 7\narg 2: two words\nGREETING=hi there\n");
  EXPECT_EQ(Stderr(), "to stderr\n");
  // Returning from main is exit code 0 too; an unset variable is unset.
  r = Run("hello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->code, 0u);
  EXPECT_EQ(Stdout(), "arg 0: hello\nGREETING=(unset)\n");
}

TEST_F(WasmTest, FilesUnderThePreopenedDirectoryAndNothingElse) {
  // A file beside the preopened directory, and a link inside it pointing out.
  std::ofstream(dir_ / "outside.txt") << "secret\n";
  fs::create_directory_symlink(dir_, dir_ / "data" / "escape");
  WasmOptions options;
  options.wasi.preopens = {{(dir_ / "data").string(), "/data"}};
  auto r = Run("files", {}, options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->code, 0u) << Stderr();
  EXPECT_EQ(Stdout(),
            "read from 7: 5 file\n"
            "size 12 regular 1\n"
            "stat moved: 0\n"
            "entry .\n"
            "entry ..\n"
            "entry escape\n"
            "entry sub\n"
            "rmdir: 0\n"
            "open /data/../outside.txt: Capabilities insufficient\n"
            "open /data/escape/outside.txt: Capabilities insufficient\n"
            "open /etc/passwd: Capabilities insufficient\n");
  // What the module did is on the host, where the directory is.
  EXPECT_FALSE(fs::exists(dir_ / "data" / "sub"));
  EXPECT_EQ(ReadFile(dir_ / "outside.txt"), "secret\n");
}

TEST_F(WasmTest, ClocksSleepAndRandom) {
  auto r = Run("clock");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Stdout(), "slept at least 30 ms: 1\nwall clock after 2020: 1\nrandom: 1\n");
}

TEST_F(WasmTest, TheMemoryLimitIsTheModulesMaximum) {
  WasmOptions options;
  options.max_memory_bytes = 8 << 20;
  auto r = Run("memory", {"64"}, options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // The module's own data and stack take part of the 8 MiB: malloc says no before 8.
  int got = std::atoi(Stdout().substr(std::string("allocated ").size()).c_str());
  EXPECT_GE(got, 4) << Stdout();
  EXPECT_LT(got, 8) << Stdout();
  // Without a limit it gets what it asks for.
  r = Run("memory", {"16"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Stdout(), "allocated 16 MiB (kept)\n");
  // A limit below what the module needs at start refuses it.
  options.max_memory_bytes = 64 << 10;
  r = Run("memory", {"1"}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("memory at start, more than its limit of 65536"),
            std::string::npos)
      << r.status().message();
}

TEST_F(WasmTest, ATrapEndsTheModuleAsAnAbort) {
  auto r = Run("trap");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->code, kTrapExitCode);
  EXPECT_EQ(r->trap, "unreachable executed");
  EXPECT_EQ(Stdout(), "before the trap\n");
}

TEST_F(WasmTest, WhatIsNotARunnableModuleIsRefusedWithTheReason) {
  // The magic number and version, then a section that is not one.
  const std::string bad = std::string("\0asm", 4) + std::string("\x01\0\0\0", 4) + "\x7f junk";
  std::ofstream(dir_ / "bad.wasm") << bad;
  WasmOptions options;
  options.module = (dir_ / "bad.wasm").string();
  auto r = RunWasm(options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is not valid"), std::string::npos) << r.status().message();
  options.module = (dir_ / "missing.wasm").string();
  r = RunWasm(options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot be read"), std::string::npos);
  // A preopened directory that is not there.
  options.module = Program("hello");
  options.wasi.preopens = {{(dir_ / "nowhere").string(), "/x"}};
  r = RunWasm(options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("preopened directory /x"), std::string::npos);
}

TEST_F(WasmTest, KisoWasmRunsAModuleAsAProcess) {
  std::string cmd = BuildDir() + "/src/runtime/kiso-wasm --env GREETING=cli " + Program("hello") +
                    " 3 > " + (dir_ / "out").string() + " 2> " + (dir_ / "err").string();
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(ReadFile(dir_ / "out"), "arg 0: " + Program("hello") + "\narg 1: 3\nGREETING=cli\n");
  EXPECT_EQ(ReadFile(dir_ / "err"), "to stderr\n");
  cmd = BuildDir() + "/src/runtime/kiso-wasm " + Program("trap") + " > " + (dir_ / "out").string() +
        " 2>&1";
  status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 134);
  EXPECT_EQ(ReadFile(dir_ / "out"), "before the trap\nwasm trap: unreachable executed\n");
  cmd = BuildDir() + "/src/runtime/kiso-wasm /nonexistent.wasm 2> " + (dir_ / "out").string();
  status = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 125);
}

}  // namespace
}  // namespace kiso::runtime::wasm
