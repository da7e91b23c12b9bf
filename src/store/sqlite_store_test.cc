// SQLite-specific behaviour: lease expiry on a fake clock, restarts,
// group commit, and refusing a corrupt file. The shared semantics are in
// store_conformance_test.cc.
#include "store/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <thread>

#include "support/temp_dir.h"

namespace kiso::store {
namespace {

using std::chrono::seconds;

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteStore> Open() {
    auto s = SqliteStore::Open(
        {.path = dir_.File("kiso.db"), .clock = &clock_, .expire_leases_in_background = false});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  testing::TempDir dir_{"sqlite"};
  FakeClock clock_;
};

TEST_F(SqliteStoreTest, LeaseExpiresOnlyWhenItsTtlHasPassed) {
  auto store = Open();
  auto lease = store->GrantLease(seconds(10));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(store->Put("/a", "1", *lease).ok());
  clock_.Advance(seconds(9));
  EXPECT_EQ(*store->ExpireLeases(), 0);
  ASSERT_TRUE(store->KeepAliveLease(*lease).ok());  // Restarts the 10 s.
  clock_.Advance(seconds(9));
  EXPECT_EQ(*store->ExpireLeases(), 0);
  EXPECT_TRUE(store->Get("/a").ok());
  clock_.Advance(seconds(2));
  EXPECT_EQ(*store->ExpireLeases(), 1);
  EXPECT_EQ(store->Get("/a").status().code(), Code::kNotFound);
  EXPECT_EQ(store->KeepAliveLease(*lease).code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, DataRevisionsAndLeasesSurviveARestart) {
  LeaseId lease = 0;
  Revision rev = 0;
  {
    auto store = Open();
    lease = *store->GrantLease(seconds(30));
    ASSERT_TRUE(store->Put("/leased", "1", lease).ok());
    ASSERT_TRUE(store->Put("/plain", "1").ok());
    ASSERT_TRUE(store->Compact(2).ok());
    rev = *store->CurrentRevision();
  }
  auto store = Open();
  EXPECT_EQ(*store->CurrentRevision(), rev);
  EXPECT_EQ(store->Get("/leased")->lease, lease);
  EXPECT_EQ(store->Get("/plain", 1).status().code(), Code::kCompacted);
  EXPECT_TRUE(store->KeepAliveLease(lease).ok());
  clock_.Advance(seconds(31));
  EXPECT_EQ(*store->ExpireLeases(), 1);
  EXPECT_EQ(store->Get("/leased").status().code(), Code::kNotFound);
  EXPECT_EQ(*store->CurrentRevision(), rev + 1);
}

TEST_F(SqliteStoreTest, ConcurrentWritersShareCommitsAndGetDistinctRevisions) {
  auto store = Open();
  constexpr int kThreads = 16, kPuts = 50;
  std::vector<std::thread> threads;
  std::vector<std::vector<Revision>> revs(kThreads);
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        auto kv = store->Put("/k" + std::to_string(t), std::to_string(i));
        ASSERT_TRUE(kv.ok());
        revs[t].push_back(kv->mod_revision);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<Revision> all;
  for (auto& r : revs) all.insert(r.begin(), r.end());
  EXPECT_EQ(all.size(), size_t{kThreads} * kPuts);
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kPuts);
}

// The first column of the first row of `sql`, read through a connection of
// the test's own (-1 if it fails): what compaction must remove is gone from
// the file, not just hidden by the store.
int64_t QueryInt(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  int64_t out = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      out = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

int64_t HistoryRows(const std::string& path) {
  return QueryInt(path, "SELECT count(*) FROM history");
}

// Runs `sql` on the file with a connection of the test's own.
bool ExecOn(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  bool ok = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK &&
            sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  return ok;
}

TEST_F(SqliteStoreTest, ASchemaOneDatabaseIsUpgradedAndKeepsItsHistory) {
  Revision one = 0, two = 0, gone = 0;
  {
    auto store = Open();
    one = store->Put("/a", "1")->mod_revision;
    two = store->Put("/a", "2")->mod_revision;
    ASSERT_TRUE(store->Put("/b", "1").ok());
    gone = store->Delete("/b")->revision;
    ASSERT_TRUE(store->Put("/b", "again").ok());
  }
  // What schema 1 wrote: no table of superseded rows, an index by key.
  ASSERT_TRUE(ExecOn(dir_.File("kiso.db"),
                     "DROP TABLE superseded; CREATE INDEX history_key ON history(key, id); "
                     "UPDATE meta SET value = 1 WHERE name = 'schema';"));
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(QueryInt(dir_.File("kiso.db"), "SELECT value FROM meta WHERE name = 'schema'"), 2);
    EXPECT_EQ(QueryInt(dir_.File("kiso.db"),
                       "SELECT count(*) FROM sqlite_master WHERE name = 'history_key'"),
              0);
    // /a "1" by "2", /b "1" by its deletion.
    EXPECT_EQ(QueryInt(dir_.File("kiso.db"), "SELECT count(*) FROM superseded"), 2);
    EXPECT_EQ(store->Get("/a", one)->value, "1");
    EXPECT_EQ(store->Get("/b", gone - 1)->value, "1");
    EXPECT_EQ(store->Get("/b", gone).status().code(), Code::kNotFound);
    EXPECT_EQ(store->Get("/b")->value, "again");
    // Compaction uses what the upgrade filled in: "1" of /a goes, "2" stays.
    ASSERT_TRUE(store->Compact(two).ok());
    store->WaitForCompaction();
    EXPECT_EQ(store->Get("/a", two)->value, "2");
    EXPECT_EQ(HistoryRows(dir_.File("kiso.db")), 4);
  }
  auto again = Open();  // Opening an upgraded file again changes nothing.
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->Get("/b", gone - 1)->value, "1");
}

TEST_F(SqliteStoreTest, RefusesASchemaItDoesNotKnow) {
  { ASSERT_NE(Open(), nullptr); }
  ASSERT_TRUE(ExecOn(dir_.File("kiso.db"), "UPDATE meta SET value = 9 WHERE name = 'schema'"));
  auto s = SqliteStore::Open({.path = dir_.File("kiso.db")});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), ::testing::HasSubstr("schema 9"));
  EXPECT_EQ(QueryInt(dir_.File("kiso.db"), "SELECT value FROM meta WHERE name = 'schema'"), 9);
}

TEST_F(SqliteStoreTest, BackgroundCompactionRemovesOldRowsAndKeepsLatest) {
  auto store = Open();
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(store->Put("/k" + std::to_string(i % 10), "v").ok());
  Revision at = *store->CurrentRevision();
  EXPECT_GE(HistoryRows(dir_.File("kiso.db")), 2000);
  ASSERT_TRUE(store->Compact(at).ok());
  store->WaitForCompaction();
  // One row per key is left: each key's value at the compacted revision.
  EXPECT_EQ(HistoryRows(dir_.File("kiso.db")), 10);
  EXPECT_EQ(store->Range(KeyRange::Prefix("/k"), {.revision = at - 1}).status().code(),
            Code::kCompacted);
  auto all = store->Range(KeyRange::Prefix("/k"), {.revision = at});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->count, 10);
  auto watch = store->WatchRange(KeyRange::Prefix("/k"), at, {});
  ASSERT_TRUE(watch.ok());
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
  std::ofstream(dir_.File("kiso.db")) << "this is not sqlite, it is somebody's notes\n";
  auto s = SqliteStore::Open({.path = dir_.File("kiso.db")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kDataLoss);
  EXPECT_THAT(s.status().message(), ::testing::HasSubstr(dir_.File("kiso.db")));
  std::ifstream in(dir_.File("kiso.db"));
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "this is not sqlite, it is somebody's notes");  // Untouched.
}

TEST_F(SqliteStoreTest, RefusesACorruptedDatabase) {
  {
    auto store = Open();
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(store->Put("/k" + std::to_string(i), std::string(200, 'v')).ok());
    }
  }
  // Scribble over pages in the middle of the file (the header stays valid).
  {
    std::fstream f(dir_.File("kiso.db"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    auto size = static_cast<int64_t>(f.tellg());
    constexpr int64_t kPage = 4096;
    ASSERT_GT(size, 8 * kPage);
    for (int64_t off = kPage; off < size; off += 3 * kPage) {
      f.seekp(off + 100);
      f << std::string(64, '\x5a');
    }
  }
  std::remove(dir_.File("kiso.db-wal").c_str());  // Only the damaged main file is left.
  auto s = SqliteStore::Open({.path = dir_.File("kiso.db")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kDataLoss) << s.status().ToString();
  EXPECT_THAT(s.status().message(), ::testing::HasSubstr(dir_.File("kiso.db")));
  EXPECT_THAT(s.status().message(), ::testing::HasSubstr("refusing to start"));
}

}  // namespace
}  // namespace kiso::store
