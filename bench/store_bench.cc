// store_bench: the Store's figures for every backend in one run, so the
// SQLite backend is compared with its peer (a real etcd on this machine)
// under the same conditions. One line per figure:
//   store backend=<sqlite|etcd> <figure>=<value> <unit>
// then same-run ratios. Durable throughout: SQLite fsyncs each group commit,
// etcd fsyncs its WAL; both keep their data in /tmp on the same disk.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "support/etcd_process.h"
#include "support/proc.h"
#include "support/temp_dir.h"

namespace kiso::store {
namespace {

using bench::Percentile;

using Clock = std::chrono::steady_clock;
using std::chrono::duration;

constexpr auto kPhase = std::chrono::seconds(3);
const std::string kValue(256, 'v');

std::map<std::string, double> figures;  // "backend figure" → value, for ratios.

void Print(const std::string& backend, const std::string& figure, double value,
           const std::string& unit) {
  fmt::print("store backend={} {}={:.1f} {}\n", backend, figure, value, unit);
  std::fflush(stdout);
  figures[backend + " " + figure] = value;
}

// Runs `op(thread, i)` on `threads` threads for `how_long`; returns ops/s and
// (if `latencies`) each op's latency in microseconds.
template <typename Op>
double Run(int threads, Clock::duration how_long, Op op, std::vector<double>* latencies = nullptr,
           const std::atomic<bool>* stop = nullptr) {
  std::atomic<int64_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  auto start = Clock::now();
  auto end = start + how_long;
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<double> mine;
      for (int64_t i = 0; Clock::now() < end && (stop == nullptr || !*stop); ++i) {
        auto t0 = Clock::now();
        if (!op(t, i)) {
          failed = true;
          return;
        }
        if (latencies != nullptr) {
          mine.push_back(duration<double, std::micro>(Clock::now() - t0).count());
        }
        ++done;
      }
      std::lock_guard lock(mu);
      if (latencies != nullptr) latencies->insert(latencies->end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : pool) t.join();
  if (failed) {
    fmt::print(stderr, "an operation failed during the run\n");
    std::exit(1);
  }
  return static_cast<double>(done) / duration<double>(Clock::now() - start).count();
}

void Must(const Status& s, const char* what) {
  if (!s.ok()) {
    fmt::print(stderr, "{}: {}\n", what, s.ToString());
    std::exit(1);
  }
}

void BenchThroughput(Store& store, const std::string& name) {
  Print(name, "put_1c",
        Run(1, kPhase,
            [&](int, int64_t i) {
              return store.Put(fmt::format("/bench/p1/{}", i % 1000), kValue).ok();
            }),
        "puts/s");
  Print(name, "put_64c",
        Run(64, kPhase,
            [&](int t, int64_t i) {
              return store.Put(fmt::format("/bench/p64/{}/{}", t, i % 100), kValue).ok();
            }),
        "puts/s");
  Print(name, "get_16c",
        Run(16, kPhase,
            [&](int t, int64_t i) {
              return store.Get(fmt::format("/bench/p64/{}/{}", t, i % 100)).ok();
            }),
        "gets/s");
  for (int i = 0; i < 1000; ++i) {
    Must(store.Put(fmt::format("/bench/range/{:04}", i), kValue).status(), "fill range");
  }
  Print(name, "range1000_4c",
        Run(4, kPhase,
            [&](int, int64_t) {
              auto r = store.Range(KeyRange::Prefix("/bench/range/"), {});
              return r.ok() && r->kvs.size() == 1000;
            }),
        "ranges/s");
}

// 100 watchers on one prefix; one writer puts 2,000 values. For each event at
// each watcher: the time from the Put being issued to the event in hand, and
// whether it arrived before the Put returned (SQLite publishes right after
// the commit, before acknowledging). A missing event fails the run.
void BenchWatch(Store& store, const std::string& name) {
  constexpr int kWatchers = 100, kEvents = 2000;
  Revision start = *store.CurrentRevision();
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < kWatchers; ++i) {
    auto w = store.WatchRange(KeyRange::Prefix("/bench/watch/"), start, {.buffer_events = 100000});
    Must(w.status(), "watch");
    watches.push_back(std::move(w).value());
  }
  std::vector<Clock::time_point> issued(kEvents), acked(kEvents);
  std::vector<std::vector<std::optional<Clock::time_point>>> received(
      kWatchers, std::vector<std::optional<Clock::time_point>>(kEvents));
  std::vector<std::thread> readers;
  readers.reserve(kWatchers);
  for (int w = 0; w < kWatchers; ++w) {
    readers.emplace_back([&, w] {
      int seen = 0;
      auto deadline = Clock::now() + std::chrono::seconds(120);
      while (seen < kEvents && Clock::now() < deadline) {
        auto events = watches[w]->Next(deadline);
        Must(events.status(), "watch next");
        auto now = Clock::now();
        for (const auto& e : *events) {
          auto idx = e.kv.mod_revision - start - 1;
          if (idx >= 0 && idx < kEvents) received[w][idx] = now;
          ++seen;
        }
      }
    });
  }
  for (int i = 0; i < kEvents; ++i) {
    issued[i] = Clock::now();
    Must(store.Put("/bench/watch/k", kValue).status(), "watch put");
    acked[i] = Clock::now();
  }
  for (auto& r : readers) r.join();
  std::vector<double> from_put;
  int64_t before_ack = 0;
  for (int w = 0; w < kWatchers; ++w) {
    for (int i = 0; i < kEvents; ++i) {
      if (!received[w][i]) {
        fmt::print(stderr, "{}: watcher {} never received event {}\n", name, w, i);
        std::exit(1);
      }
      from_put.push_back(duration<double, std::micro>(*received[w][i] - issued[i]).count());
      before_ack += *received[w][i] < acked[i];
    }
  }
  Print(name, "watch100_put_to_event_p50", Percentile(from_put, 0.50), "us");
  Print(name, "watch100_put_to_event_p99", Percentile(from_put, 0.99), "us");
  Print(name, "watch100_events_before_the_put_returned",
        100.0 * static_cast<double>(before_ack) / static_cast<double>(from_put.size()), "%");
}

// Write latency (8 clients) without, then during, a compaction of 100,000
// revisions. SQLite: measured over exactly the compaction's duration. etcd
// compacts in the background after answering: measured over the next 3 s.
void BenchCompactionFigures(Store& store, const std::string& name) {
  Revision target = *store.CurrentRevision() + 100000;
  std::atomic<bool> filled{false};
  Run(
      64, std::chrono::minutes(10),
      [&](int t, int64_t i) {
        auto kv = store.Put(fmt::format("/bench/compact/{}/{}", t, i % 150), kValue);
        if (kv.ok() && kv->mod_revision >= target) filled = true;
        return kv.ok();
      },
      nullptr, &filled);
  auto put = [&](int t, int64_t i) {
    return store.Put(fmt::format("/bench/lat/{}/{}", t, i % 100), kValue).ok();
  };
  // The quiet baseline brackets the compaction: a window right before it and
  // one right after, pooled. Without any compaction the same writers' p99
  // drifts up as history grows (by hand, twelve 3 s windows after the fill:
  // 1.3-1.9 ms in the first eight, 2.1-2.5 ms in the last four), so a window
  // before alone is the fast end of that drift.
  std::vector<double> quiet, quiet_after, compacting;
  Run(8, kPhase, put, &quiet);
  Revision at = *store.CurrentRevision();
  std::atomic<bool> done{false};
  std::thread writers([&] { Run(8, std::chrono::minutes(10), put, &compacting, &done); });
  auto t0 = Clock::now();
  Must(store.Compact(at), "compact");
  if (auto* sqlite = dynamic_cast<SqliteStore*>(&store)) {
    sqlite->WaitForCompaction();
    Print(name, "compaction_100k_revisions", duration<double>(Clock::now() - t0).count(), "s");
  } else {
    std::this_thread::sleep_for(kPhase);  // A timed measurement window, not a wait for a result.
  }
  done = true;
  writers.join();
  Run(8, kPhase, put, &quiet_after);
  Print(name, "put_8c_p99_quiet_before", Percentile(quiet, 0.99), "us");
  Print(name, "put_8c_p99_quiet_after", Percentile(quiet_after, 0.99), "us");
  Print(name, "compacting_p99_over_quiet_before_p99",
        Percentile(compacting, 0.99) / std::max(1.0, Percentile(quiet, 0.99)), "x");
  quiet.insert(quiet.end(), quiet_after.begin(), quiet_after.end());
  Print(name, "put_8c_p50_quiet", Percentile(quiet, 0.50), "us");
  Print(name, "put_8c_p99_quiet", Percentile(quiet, 0.99), "us");
  Print(name, "put_8c_p50_compacting", Percentile(compacting, 0.50), "us");
  Print(name, "put_8c_p99_compacting", Percentile(compacting, 0.99), "us");
  Print(name, "put_8c_max_compacting", Percentile(compacting, 1.0), "us");
  Print(name, "compacting_p99_over_quiet_p99",
        Percentile(compacting, 0.99) / std::max(1.0, Percentile(quiet, 0.99)), "x");
}

}  // namespace
}  // namespace kiso::store

int main() {
  if (!kiso::bench::CleanMachine()) return 2;
  using namespace kiso::store;  // NOLINT(google-build-using-namespace): a benchmark main.
  kiso::testing::TempDir dir("bench");
  auto etcd = kiso::testing::EtcdProcess::Start();
  if (!etcd.ok()) {
    fmt::print(stderr, "etcd: {}\n", etcd.status().ToString());
    return 1;
  }
  std::vector<std::pair<std::string, std::string>> backends = {
      {"sqlite", "sqlite://" + dir.File("kiso.db")}, {"etcd", (*etcd)->url()}};
  double private_before = kiso::testing::PrivateMb(0);  // Before any store is opened.
  for (const auto& [name, url] : backends) {
    auto opened = OpenStore(url);
    if (!opened.ok()) {
      fmt::print(stderr, "{}: {}\n", url, opened.status().ToString());
      return 1;
    }
    Store& store = **opened;
    BenchThroughput(store, name);
    BenchWatch(store, name);
    BenchCompactionFigures(store, name);
    // Memory on both sides as private pages (what only that process holds;
    // shared library pages are not the store's): etcd's process, and what the
    // SQLite store added to this process (its pages and its caches; the
    // benchmark's own buffers are freed by now).
    if (name == "etcd") {
      Print(name, "private_memory", kiso::testing::PrivateMb((*etcd)->pid()), "MB");
    } else {
      Print(name, "private_memory", kiso::testing::PrivateMb(0) - private_before, "MB");
    }
  }
  auto ratio = [](const std::string& figure) {
    double s = figures["sqlite " + figure], e = figures["etcd " + figure];
    fmt::print("store ratio sqlite/etcd {}={:.2f}x\n", figure, e > 0 ? s / e : 0);
  };
  ratio("put_1c");
  ratio("put_64c");
  ratio("get_16c");
  ratio("range1000_4c");
  return 0;
}
