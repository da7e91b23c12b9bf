// The Store conformance suite: every assertion runs against every backend.
// The seed claims etcd and SQLite are isomorphic stores (07.2.3); passing
// this suite on both is that claim, made executable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <set>

#include "store/sqlite_store.h"
#include "support/store_fixture.h"

namespace kiso::store {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;
using ::testing::SizeIs;

class StoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto f = testing::StoreFixture::Open(GetParam());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    fixture_ = std::move(f).value();
  }

  Store& store() { return fixture_->store(); }
  std::string Key(const std::string& name) { return fixture_->Key(name); }
  Revision Now() {
    auto r = store().CurrentRevision();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : -1;
  }

  // Reads events from `watch` until `n` arrived or 10 s passed.
  std::vector<WatchEvent> Collect(Watch& watch, size_t n) {
    std::vector<WatchEvent> out;
    auto deadline = steady_clock::now() + seconds(10);
    while (out.size() < n && steady_clock::now() < deadline) {
      auto batch = watch.Next(deadline);
      if (!batch.ok()) {
        ADD_FAILURE() << "watch ended: " << batch.status().ToString();
        break;
      }
      for (auto& e : *batch) out.push_back(std::move(e));
    }
    return out;
  }

  // Reads `watch` until it ends; returns why (OK if it did not end in 10 s).
  Status WaitForEnd(Watch& watch) {
    auto deadline = steady_clock::now() + seconds(10);
    while (steady_clock::now() < deadline) {
      auto batch = watch.Next(deadline);
      if (!batch.ok()) return batch.status();
    }
    return Status::Ok();
  }

  std::unique_ptr<testing::StoreFixture> fixture_;
};

TEST_P(StoreConformanceTest, StatesItsCapClass) {
  EXPECT_EQ(store().Backend(), GetParam());
  EXPECT_EQ(store().Cap().name, GetParam() == "etcd" ? "CP" : "CA");
}

TEST_P(StoreConformanceTest, PutAssignsRevisionsAndVersions) {
  Revision start = Now();
  auto a = store().Create(Key("a"), "1");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->mod_revision, start + 1);
  EXPECT_EQ(a->create_revision, start + 1);
  EXPECT_EQ(a->version, 1);
  auto b = store().Put(Key("a"), "2");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->mod_revision, start + 2);
  EXPECT_EQ(b->create_revision, start + 1);
  EXPECT_EQ(b->version, 2);
  EXPECT_EQ(Now(), start + 2);
  auto got = store().Get(Key("a"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, *b);
}

TEST_P(StoreConformanceTest, GetAtAnOlderRevisionSeesThePast) {
  auto v1 = store().Put(Key("k"), "one");
  auto v2 = store().Put(Key("k"), "two");
  ASSERT_TRUE(v1.ok() && v2.ok());
  auto del = store().Delete(Key("k"));
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->prev.value, "two");
  EXPECT_EQ(del->revision, v2->mod_revision + 1);
  EXPECT_EQ(store().Get(Key("k")).status().code(), Code::kNotFound);
  EXPECT_EQ(store().Get(Key("k"), v1->mod_revision)->value, "one");
  EXPECT_EQ(store().Get(Key("k"), v2->mod_revision)->value, "two");
  EXPECT_EQ(store().Get(Key("k"), del->revision).status().code(), Code::kNotFound);
  // Recreated: a new generation starts at version 1.
  auto again = store().Put(Key("k"), "three");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, 1);
  EXPECT_EQ(again->create_revision, again->mod_revision);
}

TEST_P(StoreConformanceTest, FutureRevisionIsInvalid) {
  Revision now = Now();
  EXPECT_EQ(store().Get(Key("x"), now + 100).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store().Compact(now + 100).code(), Code::kInvalidArgument);
}

TEST_P(StoreConformanceTest, RangeHonoursPrefixBoundsLimitCountAndMore) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store().Put(Key("r/" + std::to_string(i)), "v").ok());
  ASSERT_TRUE(store().Put(Key("r0"), "outside").ok());  // Shares the bytes "r" but not "r/".
  ASSERT_TRUE(store().Put(Key("s"), "outside").ok());

  auto all = store().Range(KeyRange::Prefix(Key("r/")), {});
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(all->kvs, SizeIs(10));
  EXPECT_EQ(all->count, 10);
  EXPECT_FALSE(all->more);
  EXPECT_EQ(all->revision, Now());
  for (size_t i = 1; i < all->kvs.size(); ++i) EXPECT_LT(all->kvs[i - 1].key, all->kvs[i].key);

  auto page = store().Range(KeyRange::Prefix(Key("r/")), {.limit = 3});
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->kvs, SizeIs(3));
  EXPECT_EQ(page->kvs[0].key, Key("r/0"));
  EXPECT_EQ(page->count, 10);
  EXPECT_TRUE(page->more);

  auto between = store().Range(KeyRange::Between(Key("r/2"), Key("r/5")), {});
  ASSERT_TRUE(between.ok());
  ASSERT_THAT(between->kvs, SizeIs(3));
  EXPECT_EQ(between->kvs.back().key, Key("r/4"));

  auto counted = store().Range(KeyRange::Prefix(Key("r/")), {.count_only = true});
  ASSERT_TRUE(counted.ok());
  EXPECT_TRUE(counted->kvs.empty());
  EXPECT_EQ(counted->count, 10);

  auto to_end = store().Range({Key("r0"), KeyRange::kRangeToEnd}, {});
  ASSERT_TRUE(to_end.ok());
  EXPECT_GE(to_end->count, 2);
}

TEST_P(StoreConformanceTest, RangeAtARevisionIsASnapshot) {
  ASSERT_TRUE(store().Put(Key("p/a"), "1").ok());
  auto b = store().Put(Key("p/b"), "1");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store().Put(Key("p/c"), "1").ok());
  ASSERT_TRUE(store().Delete(Key("p/a")).ok());
  ASSERT_TRUE(store().Put(Key("p/b"), "2").ok());
  auto then = store().Range(KeyRange::Prefix(Key("p/")), {.revision = b->mod_revision});
  ASSERT_TRUE(then.ok());
  ASSERT_THAT(then->kvs, SizeIs(2));
  EXPECT_EQ(then->kvs[0].key, Key("p/a"));
  EXPECT_EQ(then->kvs[1].value, "1");
  auto now = store().Range(KeyRange::Prefix(Key("p/")), {});
  ASSERT_THAT(now->kvs, SizeIs(2));
  EXPECT_EQ(now->kvs[0].key, Key("p/b"));
  EXPECT_EQ(now->kvs[0].value, "2");
}

TEST_P(StoreConformanceTest, CreateRefusesALiveKeyAndWritesNothing) {
  ASSERT_TRUE(store().Create(Key("c"), "first").ok());
  Revision before = Now();
  auto again = store().Create(Key("c"), "second");
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(Now(), before);
  EXPECT_EQ(store().Get(Key("c"))->value, "first");
}

TEST_P(StoreConformanceTest, UpdateComparesModRevisionAndReturnsTheCurrentValue) {
  auto v1 = store().Create(Key("u"), "1");
  ASSERT_TRUE(v1.ok());
  auto v2 = store().Update(Key("u"), "2", v1->mod_revision);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(v2->version, 2);
  Revision before = Now();
  KeyValue current;
  auto stale = store().Update(Key("u"), "3", v1->mod_revision, 0, &current);
  EXPECT_EQ(stale.status().code(), Code::kConflict);
  EXPECT_EQ(current, *v2);
  EXPECT_EQ(Now(), before);
  EXPECT_EQ(store().Update(Key("missing"), "x", 1).status().code(), Code::kNotFound);
}

TEST_P(StoreConformanceTest, DeleteCanBeConditional) {
  auto v = store().Create(Key("d"), "1");
  ASSERT_TRUE(v.ok());
  KeyValue current;
  EXPECT_EQ(store().Delete(Key("d"), v->mod_revision + 1000, &current).status().code(),
            Code::kConflict);
  EXPECT_EQ(current, *v);
  ASSERT_TRUE(store().Get(Key("d")).ok());
  auto del = store().Delete(Key("d"), v->mod_revision);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->prev, *v);
  Revision before = Now();
  EXPECT_EQ(store().Delete(Key("d")).status().code(), Code::kNotFound);
  EXPECT_EQ(Now(), before);
}

TEST_P(StoreConformanceTest, TransactionIsAtomicWithOneRevision) {
  ASSERT_TRUE(store().Put(Key("t/gone"), "x").ok());
  Revision start = Now();
  TxnRequest txn;
  txn.compares.push_back(Compare::Missing(Key("t/a")));
  txn.compares.push_back(Compare::ValueIs(Key("t/gone"), "x"));
  txn.success = {TxnOp::Put(Key("t/a"), "1"), TxnOp::Put(Key("t/b"), "2"),
                 TxnOp::Delete(KeyRange::Single(Key("t/gone")))};
  txn.failure = {TxnOp::Get(Key("t/a"))};
  auto r = store().Txn(txn);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->revision, start + 1);
  ASSERT_THAT(r->results, SizeIs(3));
  EXPECT_EQ(r->results[2].deleted, 1);
  EXPECT_EQ(store().Get(Key("t/a"))->mod_revision, start + 1);
  EXPECT_EQ(store().Get(Key("t/b"))->mod_revision, start + 1);

  // Same transaction again: the compare fails, the failure branch reads.
  auto again = store().Txn(txn);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded);
  EXPECT_EQ(again->revision, start + 1);
  ASSERT_THAT(again->results, SizeIs(1));
  ASSERT_THAT(again->results[0].kvs, SizeIs(1));
  EXPECT_EQ(again->results[0].kvs[0].value, "1");
}

TEST_P(StoreConformanceTest, WatchReplaysHistoryThenStreamsLiveEvents) {
  Revision start = Now();
  ASSERT_TRUE(store().Put(Key("w/a"), "1").ok());
  ASSERT_TRUE(store().Put(Key("other"), "x").ok());
  ASSERT_TRUE(store().Put(Key("w/a"), "2").ok());
  auto watch = store().WatchRange(KeyRange::Prefix(Key("w/")), start, {.prev_kv = true});
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(store().Delete(Key("w/a")).ok());
  ASSERT_TRUE(store().Put(Key("w/b"), "3").ok());
  auto events = Collect(**watch, 4);
  ASSERT_THAT(events, SizeIs(4));
  EXPECT_EQ(events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[0].kv.mod_revision, start + 1);
  EXPECT_FALSE(events[0].prev_kv.has_value());
  EXPECT_EQ(events[1].kv.value, "2");
  EXPECT_EQ(events[1].kv.mod_revision, start + 3);
  ASSERT_TRUE(events[1].prev_kv.has_value());
  EXPECT_EQ(events[1].prev_kv->value, "1");
  EXPECT_EQ(events[2].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[2].kv, (KeyValue{.key = Key("w/a"), .mod_revision = start + 4}));
  ASSERT_TRUE(events[2].prev_kv.has_value());
  EXPECT_EQ(events[2].prev_kv->value, "2");
  EXPECT_EQ(events[3].kv.key, Key("w/b"));
  EXPECT_EQ(events[3].kv.mod_revision, start + 5);
}

TEST_P(StoreConformanceTest, WatchWithoutPrevKvOmitsIt) {
  Revision start = Now();
  ASSERT_TRUE(store().Put(Key("n"), "1").ok());
  ASSERT_TRUE(store().Put(Key("n"), "2").ok());
  auto watch = store().WatchRange(KeyRange::Single(Key("n")), start, {});
  ASSERT_TRUE(watch.ok());
  auto events = Collect(**watch, 2);
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_FALSE(events[1].prev_kv.has_value());
}

TEST_P(StoreConformanceTest, CompactionDiscardsHistoryButKeepsLatestValues) {
  auto a1 = store().Put(Key("c/a"), "1");
  ASSERT_TRUE(store().Put(Key("c/a"), "2").ok());
  ASSERT_TRUE(store().Put(Key("c/b"), "1").ok());
  ASSERT_TRUE(store().Put(Key("c/gone"), "1").ok());
  ASSERT_TRUE(store().Delete(Key("c/gone")).ok());
  Revision at = Now();
  ASSERT_TRUE(store().Put(Key("c/b"), "2").ok());
  ASSERT_TRUE(store().Compact(at).ok());

  EXPECT_EQ(store().Get(Key("c/a"), a1->mod_revision).status().code(), Code::kCompacted);
  EXPECT_EQ(store().Get(Key("c/a"), at - 1).status().code(), Code::kCompacted);
  EXPECT_EQ(store().Get(Key("c/a"), at)->value, "2");
  EXPECT_EQ(store().Get(Key("c/b"), at)->value, "1");
  EXPECT_EQ(store().Get(Key("c/gone"), at).status().code(), Code::kNotFound);
  EXPECT_EQ(store().Get(Key("c/b"))->value, "2");
  EXPECT_EQ(store().Compact(at).code(), Code::kCompacted);

  // A watch needing events at or below the compaction point is refused...
  auto old = store().WatchRange(KeyRange::Prefix(Key("c/")), at - 1, {});
  Status why = old.ok() ? WaitForEnd(**old) : old.status();
  EXPECT_EQ(why.code(), Code::kCompacted) << why.ToString();
  // ...and one starting right after it still sees everything newer.
  auto fresh = store().WatchRange(KeyRange::Prefix(Key("c/")), at, {});
  ASSERT_TRUE(fresh.ok());
  auto events = Collect(**fresh, 1);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].kv.value, "2");
}

TEST_P(StoreConformanceTest, RepeatedCompactionForgetsKeysDeletedInBetween) {
  ASSERT_TRUE(store().Put(Key("rc/k"), "1").ok());
  ASSERT_TRUE(store().Put(Key("rc/k"), "2").ok());
  ASSERT_TRUE(store().Compact(Now()).ok());  // "2" survives as the newest value.
  ASSERT_TRUE(store().Delete(Key("rc/k")).ok());
  ASSERT_TRUE(store().Put(Key("rc/other"), "x").ok());
  Revision second = Now();
  ASSERT_TRUE(store().Compact(second).ok());
  if (auto* sqlite = dynamic_cast<SqliteStore*>(&store())) sqlite->WaitForCompaction();
  auto at = store().Range(KeyRange::Prefix(Key("rc/")), {.revision = second});
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  ASSERT_THAT(at->kvs, SizeIs(1));
  EXPECT_EQ(at->kvs[0].key, Key("rc/other"));
  EXPECT_EQ(store().Get(Key("rc/k"), second).status().code(), Code::kNotFound);
}

TEST_P(StoreConformanceTest, SlowWatcherIsCancelledWithoutBlockingOthers) {
  Revision start = Now();
  auto slow = store().WatchRange(KeyRange::Prefix(Key("s/")), start, {.buffer_events = 5});
  auto fast = store().WatchRange(KeyRange::Prefix(Key("s/")), start, {});
  ASSERT_TRUE(slow.ok() && fast.ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(store().Put(Key("s/k"), std::to_string(i)).ok());
  auto events = Collect(**fast, 50);
  EXPECT_THAT(events, SizeIs(50));
  // The slow watcher lost events, so its watch ends with a reason to re-list.
  Status why = WaitForEnd(**slow);
  EXPECT_EQ(why.code(), Code::kResourceExhausted) << why.ToString();
  EXPECT_THAT(why.message(), ::testing::HasSubstr("list again"));
}

TEST_P(StoreConformanceTest, LeaseAttachKeepAliveAndRevoke) {
  auto lease = store().GrantLease(seconds(60));
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  Revision start = Now();
  ASSERT_TRUE(store().Put(Key("l/a"), "1", *lease).ok());
  ASSERT_TRUE(store().Put(Key("l/b"), "1", *lease).ok());
  EXPECT_EQ(store().Get(Key("l/a"))->lease, *lease);
  EXPECT_TRUE(store().KeepAliveLease(*lease).ok());
  auto watch = store().WatchRange(KeyRange::Prefix(Key("l/")), start + 2, {});
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(store().RevokeLease(*lease).ok());
  auto events = Collect(**watch, 2);
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[0].kv.mod_revision, events[1].kv.mod_revision);  // One revision for both.
  EXPECT_EQ(store().Get(Key("l/a")).status().code(), Code::kNotFound);
  EXPECT_EQ(store().KeepAliveLease(*lease).code(), Code::kNotFound);
  EXPECT_EQ(store().RevokeLease(*lease).code(), Code::kNotFound);
}

TEST_P(StoreConformanceTest, PutWithUnknownLeaseIsRefused) {
  Revision before = Now();
  EXPECT_EQ(store().Put(Key("nolease"), "1", 0x7abcdef).status().code(), Code::kNotFound);
  EXPECT_EQ(Now(), before);
}

TEST_P(StoreConformanceTest, ExpiredLeaseDeletesItsKeys) {
  auto lease = store().GrantLease(seconds(1));
  ASSERT_TRUE(lease.ok());
  Revision start = Now();
  ASSERT_TRUE(store().Put(Key("e/a"), "1", *lease).ok());
  ASSERT_TRUE(store().Put(Key("e/b"), "1", *lease).ok());
  auto watch = store().WatchRange(KeyRange::Prefix(Key("e/")), start + 2, {});
  ASSERT_TRUE(watch.ok());
  auto events = Collect(**watch, 2);  // Waits (up to 10 s) for the expiry.
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[0].kv.mod_revision, events[1].kv.mod_revision);
  EXPECT_EQ(store().Range(KeyRange::Prefix(Key("e/")), {})->count, 0);
}

// A model of the keys' history checked against every past revision a backend
// still serves, across deletions, re-creations, multi-key transactions and two
// compactions (random operations from a fixed seed).
TEST_P(StoreConformanceTest, EveryPastRevisionMatchesAModelAcrossCompactions) {
  struct Held {
    std::string value;
    Revision create = 0, mod = 0;
    int64_t version = 0;
  };
  using State = std::map<std::string, Held>;
  std::map<Revision, State> past;
  State now;
  Revision rev = Now();
  past[rev] = now;
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto key = [&](int i) { return Key("h/" + std::string(1, static_cast<char>('a' + i))); };
  int serial = 0;
  auto run = [&](int ops) {
    for (int step = 0; step < ops; ++step) {
      TxnRequest txn;
      std::set<int> used;
      int kind = pick(10);
      int puts = kind < 5 ? 1 : kind < 7 ? 2 + pick(2) : 0;
      while (static_cast<int>(used.size()) < puts) used.insert(pick(8));
      for (int i : used) txn.success.push_back(TxnOp::Put(key(i), fmt::format("v{}", ++serial)));
      int first = -1, last = -1;  // The deleted keys: [first, last).
      if (kind >= 5 && kind < 9) {
        int k = pick(8);
        if (used.insert(k).second) {
          first = k;
          last = k + 1;
        }
      } else if (kind == 9) {  // c, d and e.
        first = 2;
        last = 5;
      }
      if (first >= 0) {
        txn.success.push_back(TxnOp::Delete(KeyRange::Between(key(first), key(last))));
      }
      auto r = store().Txn(txn);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      bool changed = puts > 0;
      for (int i = first; i >= 0 && i < last; ++i) changed |= now.erase(key(i)) > 0;
      if (changed) ++rev;
      ASSERT_EQ(r->revision, rev);
      for (const TxnOp& op : txn.success) {
        if (op.type != TxnOp::Type::kPut) continue;
        Held& held = now[op.range.key];
        if (held.version == 0) held.create = rev;
        held = {op.value, held.create, rev, held.version + 1};
      }
      past[rev] = now;
    }
  };
  auto check = [&](Revision compacted) {
    for (const auto& [at, state] : past) {
      if (at == 0) continue;  // Revision 0 asks for the current state.
      auto got = store().Range(KeyRange::Prefix(Key("h/")), {.revision = at});
      if (at < compacted) {
        EXPECT_EQ(got.status().code(), Code::kCompacted) << "revision " << at;
        continue;
      }
      ASSERT_TRUE(got.ok()) << "revision " << at << ": " << got.status().ToString();
      ASSERT_EQ(got->kvs.size(), state.size()) << "revision " << at;
      auto want = state.begin();
      for (const KeyValue& kv : got->kvs) {
        EXPECT_EQ(kv.key, want->first) << "revision " << at;
        EXPECT_EQ(kv.value, want->second.value) << "revision " << at << " " << kv.key;
        EXPECT_EQ(kv.create_revision, want->second.create) << "revision " << at << " " << kv.key;
        EXPECT_EQ(kv.mod_revision, want->second.mod) << "revision " << at << " " << kv.key;
        EXPECT_EQ(kv.version, want->second.version) << "revision " << at << " " << kv.key;
        ++want;
      }
      // A page and a count at the same revision, on a range that is not a prefix.
      auto page =
          store().Range(KeyRange::Between(Key("h/b"), Key("h/g")), {.revision = at, .limit = 2});
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      auto from = state.lower_bound(Key("h/b"));
      auto to = state.lower_bound(Key("h/g"));
      auto in_range = std::distance(from, to);
      EXPECT_EQ(page->count, in_range) << "revision " << at;
      EXPECT_EQ(page->more, in_range > 2) << "revision " << at;
      ASSERT_EQ(static_cast<int64_t>(page->kvs.size()), std::min<int64_t>(in_range, 2));
      for (const KeyValue& kv : page->kvs) EXPECT_EQ(kv.key, (from++)->first);
      auto one = store().Range(KeyRange::Single(Key("h/d")), {.revision = at, .count_only = true});
      ASSERT_TRUE(one.ok());
      EXPECT_EQ(one->count, static_cast<int64_t>(state.count(Key("h/d")))) << "revision " << at;
    }
  };
  auto compact = [&](Revision at) {
    ASSERT_TRUE(store().Compact(at).ok());
    if (auto* sqlite = dynamic_cast<SqliteStore*>(&store())) sqlite->WaitForCompaction();
  };
  run(120);
  check(0);
  Revision first = past.begin()->first + (rev - past.begin()->first) / 2;
  compact(first);
  run(80);
  check(first);
  Revision second = rev - 20;
  compact(second);
  run(20);
  check(second);
}

TEST_P(StoreConformanceTest, BadInputIsRefusedAndChangesNothing) {
  Revision before = Now();
  EXPECT_EQ(store().Put("", "v").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store().Get("").status().code(), Code::kInvalidArgument);
  std::string huge(kMaxValueBytes + 1, 'x');
  auto too_big = store().Put(Key("big"), huge);
  EXPECT_EQ(too_big.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(too_big.status().message(), ::testing::HasSubstr("limit"));
  EXPECT_EQ(store().Range(KeyRange::Between(Key("z"), Key("a")), {}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(store().WatchRange(KeyRange::Between(Key("z"), Key("a")), 0, {}).status().code(),
            Code::kInvalidArgument);
  TxnRequest too_many;
  for (size_t i = 0; i <= kMaxTxnOps; ++i) {
    too_many.success.push_back(TxnOp::Put(Key("m" + std::to_string(i)), "v"));
  }
  EXPECT_EQ(store().Txn(too_many).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Now(), before);
  EXPECT_EQ(store().Get(Key("big")).status().code(), Code::kNotFound);
  // The largest allowed value is accepted.
  EXPECT_TRUE(store().Put(Key("big"), std::string(kMaxValueBytes - 64, 'y')).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest, ::testing::Values("sqlite", "etcd"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiso::store
