// store_crash_writer URL SEED [--unsafe-no-sync]: writes to a store from
// several threads forever and prints one line per acknowledged write, flushed
// before the next write:
//   put REV KEY VALUE | del REV KEY | compact REV (announced before it is issued)
// durability_test.cc kills it with SIGKILL at random moments, power_cut_test.cc
// cuts the power of the virtual machine it runs in; every line it printed is a
// write the store acknowledged, and must survive.
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_store.h"
#include "store/store.h"

namespace {

std::mutex out_mu;

// One line out. `drained`: also wait until a terminal (the power-cut test's
// serial console) has sent it, so that it is out of the machine before what
// it announces is done; a flushed line may still sit in the console's buffer
// when the power goes. On a pipe (SIGKILL tests) the flush is enough.
void Report(const std::string& line, bool drained = false) {
  std::lock_guard lock(out_mu);
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (drained) (void)tcdrain(STDOUT_FILENO);  // ENOTTY on a pipe: nothing to wait for.
}

void Writer(kiso::store::Store* store, int id, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int64_t n = 0;; ++n) {
    std::string key = "/d/" + std::to_string(id) + "/" + std::to_string(rng() % 40);
    int dice = static_cast<int>(rng() % 100);
    if (dice < 8) {
      auto del = store->Delete(key);
      if (del.ok()) Report("del " + std::to_string(del->revision) + " " + key);
    } else if (dice < 9 && id == 0) {
      // Announced before it is issued: a kill can land between the compaction
      // and any report of it, so the parent must assume every announced one happened.
      auto rev = store->CurrentRevision();
      if (rev.ok() && *rev > 100) {
        Report("compact " + std::to_string(*rev - 100), /*drained=*/true);
        (void)store->Compact(*rev - 100);
      }
    } else {
      std::string value =
          "w" + std::to_string(id) + "-" + std::to_string(n) + "-" + std::string(rng() % 300, 'x');
      auto kv = store->Put(key, value);
      if (!kv.ok()) {
        std::fprintf(stderr, "put failed: %s\n", kv.status().ToString().c_str());
        continue;
      }
      Report(fmt::format("put {} {} {}", kv->mod_revision, key, value));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool no_sync = argc == 4 && std::string_view(argv[3]) == "--unsafe-no-sync";
  if (argc != 3 && !no_sync) {
    std::fprintf(stderr, "usage: %s STORE_URL SEED [--unsafe-no-sync]\n", argv[0]);
    return 2;
  }
  kiso::Result<std::unique_ptr<kiso::store::Store>> store = kiso::Status(kiso::Code::kInternal, "");
  if (no_sync) {
    // The power-cut test's control: commits that do not wait for the disk.
    kiso::store::SqliteStore::Options options;
    options.path = std::string(argv[1]).substr(std::string_view("sqlite://").size());
    options.sync = false;
    auto opened = kiso::store::SqliteStore::Open(options);
    if (opened.ok()) {
      store = std::unique_ptr<kiso::store::Store>(std::move(opened).value());
    } else {
      store = opened.status();
    }
  } else {
    store = kiso::store::OpenStore(argv[1]);
  }
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  Report("ready");
  uint64_t seed = std::stoull(argv[2]);
  constexpr int kWriters = 4;
  std::vector<std::thread> threads;
  threads.reserve(kWriters);
  for (int i = 0; i < kWriters; ++i) threads.emplace_back(Writer, store->get(), i, seed * 31 + i);
  for (auto& t : threads) t.join();
}
