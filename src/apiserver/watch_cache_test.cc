#include "apiserver/watch_cache.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "store/forwarding_store.h"
#include "support/temp_dir.h"

namespace kiso::apiserver {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

class WatchCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore("sqlite://" + dir_.File("kiso.db"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  store::Revision Put(const std::string& ns, const std::string& name,
                      const std::string& extra = "") {
    std::string value = R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":")" + name +
                        R"(","namespace":")" + ns + R"(","labels":{"app":"a"}})" + extra + "}";
    auto kv = store_->Put("/registry/core/configmaps/" + ns + "/" + name, value);
    EXPECT_TRUE(kv.ok());
    return kv->mod_revision;
  }
  std::vector<EventPtr> Drain(CacheWatcher& w, size_t n) {
    std::vector<EventPtr> out;
    auto deadline = steady_clock::now() + std::chrono::seconds(5);
    while (out.size() < n && steady_clock::now() < deadline) {
      auto events = w.Next(deadline);
      if (!events.ok()) break;
      out.insert(out.end(), events->begin(), events->end());
    }
    return out;
  }

  testing::TempDir dir_{"watchcache"};
  std::unique_ptr<store::Store> store_;
};

TEST_F(WatchCacheTest, ListsFromMemoryWithResourceVersions) {
  store::Revision r1 = Put("ns1", "a");
  Put("ns2", "b");
  auto cache = WatchCache::Start(store_.get(), {});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  store::Revision r3 = Put("ns1", "c");
  ASSERT_TRUE((*cache)->WaitFor(r3, steady_clock::now() + std::chrono::seconds(5)));
  auto snap = (*cache)->List("/registry/core/configmaps/ns1/");
  EXPECT_EQ(snap.revision, r3);
  ASSERT_EQ(snap.objects.size(), 2u);
  EXPECT_EQ(snap.objects[0]->name, "a");
  EXPECT_EQ(snap.objects[0]->revision, r1);
  EXPECT_NE(snap.objects[0]->json.find("\"resourceVersion\":\"" + std::to_string(r1) + "\""),
            std::string::npos);
  EXPECT_EQ(snap.objects[0]->labels.at("app"), "a");
  ASSERT_NE(snap.objects[1]->fields.Find("metadata.name"), nullptr);
  EXPECT_EQ(*snap.objects[1]->fields.Find("metadata.name"), "c");
  EXPECT_EQ(snap.objects[1]->fields.Find("spec.nodeName"), nullptr);  // Not a field of its kind.
  EXPECT_EQ((*cache)->List("/registry/core/configmaps/", snap.objects[0]->key).objects.size(), 2u);
}

TEST_F(WatchCacheTest, ReplaysFromARevisionThenStreams) {
  auto cache = WatchCache::Start(store_.get(), {});
  ASSERT_TRUE(cache.ok());
  store::Revision r1 = Put("ns", "a");
  Put("ns", "a", R"(,"data":{"k":"v"})");
  ASSERT_TRUE(store_->Delete("/registry/core/configmaps/ns/a").ok());
  auto w = (*cache)->Watch("/registry/core/configmaps/ns/", r1 - 1);
  ASSERT_TRUE(w.ok());
  auto replay = Drain(**w, 3);
  ASSERT_EQ(replay.size(), 3u);
  EXPECT_EQ(replay[0]->type, CacheEvent::Type::kAdded);
  EXPECT_EQ(replay[1]->type, CacheEvent::Type::kModified);
  EXPECT_EQ(replay[2]->type, CacheEvent::Type::kDeleted);
  EXPECT_NE(replay[2]->object->json.find("\"k\":\"v\""), std::string::npos);  // Last state.
  store::Revision r4 = Put("ns", "live");
  Put("other", "x");  // Outside the watched prefix.
  auto live = Drain(**w, 1);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0]->revision, r4);
  EXPECT_TRUE((*w)->Next(steady_clock::now() + milliseconds(50))->empty());
}

TEST_F(WatchCacheTest, ReplaysAReplacedVersionAsStoredAndKeepsOnlyItsSelectorsInMemory) {
  auto cache = WatchCache::Start(store_.get(), {});
  ASSERT_TRUE(cache.ok());
  store::Revision r1 = Put("ns", "a");
  store::Revision r2 = Put("ns", "a", R"(,"data":{"k":"v"})");
  ASSERT_TRUE((*cache)->WaitFor(r2, steady_clock::now() + std::chrono::seconds(5)));
  auto w = (*cache)->Watch("/registry/core/configmaps/ns/", r1 - 1);
  ASSERT_TRUE(w.ok());
  auto replay = Drain(**w, 2);
  ASSERT_EQ(replay.size(), 2u);
  // The first version, replaced since, as it was written (read back from the store).
  EXPECT_EQ(replay[0]->type, CacheEvent::Type::kAdded);
  EXPECT_FALSE(replay[0]->object->json_in_store());
  EXPECT_EQ(replay[0]->object->revision, r1);
  EXPECT_NE(replay[0]->object->json.find("\"resourceVersion\":\"" + std::to_string(r1) + "\""),
            std::string::npos);
  EXPECT_EQ(replay[0]->object->json.find("\"data\""), std::string::npos);
  EXPECT_EQ(replay[0]->object->labels.at("app"), "a");
  // The change: the current version whole; of the one it replaced, what selectors need.
  EXPECT_EQ(replay[1]->type, CacheEvent::Type::kModified);
  EXPECT_NE(replay[1]->object->json.find("\"k\":\"v\""), std::string::npos);
  ASSERT_NE(replay[1]->prev, nullptr);
  EXPECT_TRUE(replay[1]->prev->json_in_store());
  EXPECT_EQ(replay[1]->prev->revision, r1);
  EXPECT_EQ(replay[1]->prev->labels.at("app"), "a");
  ASSERT_NE(replay[1]->prev->fields.Find("metadata.name"), nullptr);
  EXPECT_EQ(*replay[1]->prev->fields.Find("metadata.name"), "a");
  // The cache no longer has the first version's JSON: once the store's history
  // is compacted past it, a replay from before it is too old, while one from
  // after it (the current version, from memory) still works.
  ASSERT_TRUE(store_->Compact(r2).ok());
  auto too_old = (*cache)->Watch("/registry/core/configmaps/ns/", r1 - 1);
  ASSERT_FALSE(too_old.ok());
  EXPECT_EQ(too_old.status().code(), Code::kCompacted);
  EXPECT_TRUE(too_old.status().message().starts_with("too old resource version: "));
  auto recent = (*cache)->Watch("/registry/core/configmaps/ns/", r1);
  ASSERT_TRUE(recent.ok());
  auto current = Drain(**recent, 1);
  ASSERT_EQ(current.size(), 1u);
  EXPECT_EQ(current[0]->revision, r2);
  EXPECT_NE(current[0]->object->json.find("\"k\":\"v\""), std::string::npos);
}

// A store that runs `during_read` once, inside the first read at a past
// revision: how a test writes while the cache reads a replaced version back.
class ReadHookStore : public store::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<store::RangeResult> Range(const store::KeyRange& range,
                                   const store::RangeOptions& options) override {
    if (options.revision != 0 && during_read) std::exchange(during_read, nullptr)();
    return ForwardingStore::Range(range, options);
  }
  std::function<void()> during_read;  // Set and run on the test's thread only.
};

TEST_F(WatchCacheTest, AReplayTakesTheVersionsReplacedWhileItReadBack) {
  ReadHookStore hooked(store_.get());
  auto cache = WatchCache::Start(&hooked, {});
  ASSERT_TRUE(cache.ok());
  store::Revision r1 = Put("ns", "a");
  store::Revision r2 = Put("ns", "a", R"(,"data":{"k":"a2"})");
  ASSERT_TRUE((*cache)->WaitFor(r2, steady_clock::now() + std::chrono::seconds(5)));
  store::Revision r3 = 0;
  store::Revision r4 = 0;
  hooked.during_read = [&] {
    // While the replay reads a's first version back, b is written and replaced.
    r3 = Put("ns", "b");
    r4 = Put("ns", "b", R"(,"data":{"k":"b2"})");
    EXPECT_TRUE((*cache)->WaitFor(r4, steady_clock::now() + std::chrono::seconds(5)));
  };
  auto w = (*cache)->Watch("/registry/core/configmaps/ns/", r1 - 1);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(hooked.during_read, nullptr);  // It ran.
  auto replay = Drain(**w, 4);
  ASSERT_EQ(replay.size(), 4u);
  std::vector<std::pair<store::Revision, std::string>> got;
  for (const auto& e : replay) {
    EXPECT_FALSE(e->object->json_in_store());
    got.emplace_back(
        e->revision,
        e->object->name +
            (e->object->json.find("\"data\"") == std::string::npos ? "" : " with data"));
  }
  EXPECT_EQ(got, (std::vector<std::pair<store::Revision, std::string>>{
                     {r1, "a"}, {r2, "a with data"}, {r3, "b"}, {r4, "b with data"}}));
  EXPECT_TRUE((*w)->Next(steady_clock::now() + milliseconds(50))->empty());
}

TEST_F(WatchCacheTest, InProcessWatchersShareOneDecodedCopyOfTheCurrentVersion) {
  auto cache = WatchCache::Start(store_.get(), {});
  ASSERT_TRUE(cache.ok());
  store::Revision r = Put("held", "a");  // Before any in-process watcher: not held.
  ASSERT_TRUE((*cache)->WaitFor(r, steady_clock::now() + std::chrono::seconds(5)));
  auto w = (*cache)->Watch("/registry/core/configmaps/held/", r, true);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(store_
                  ->Put("/registry/core/configmaps/held/a",
                        R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a",)"
                        R"("namespace":"held","managedFields":[{"manager":"m"}]}})")
                  .ok());
  auto first = Drain(**w, 1);
  ASSERT_EQ(first.size(), 1u);
  // Decoded once, while the cache applied the write: every reader gets that copy.
  auto decoded = first[0]->object->Decoded();
  ASSERT_TRUE(decoded && decoded->is_object());
  EXPECT_EQ(decoded.get(), first[0]->object->Decoded().get());
  EXPECT_EQ(api::Find(*decoded, {"metadata", "managedFields"}), nullptr);
  EXPECT_EQ(api::GetString(*decoded, {"metadata", "resourceVersion"}),
            std::to_string(first[0]->revision));
  std::weak_ptr<const boost::json::value> version1 = decoded;
  decoded.reset();
  EXPECT_FALSE(version1.expired());  // Held by the cache: the key's current version.
  Put("held", "a", R"(,"data":{"k":"2"})");
  ASSERT_EQ(Drain(**w, 1).size(), 1u);
  EXPECT_TRUE(version1.expired());  // Replaced: kept only where someone kept it (no one).
  // Outside every in-process watcher's prefix, nothing is held: each use decodes.
  r = Put("other", "b");
  ASSERT_TRUE((*cache)->WaitFor(r, steady_clock::now() + std::chrono::seconds(5)));
  std::weak_ptr<const boost::json::value> other =
      (*cache)->Get("/registry/core/configmaps/other/b")->Decoded();
  EXPECT_TRUE(other.expired());
  // Once the in-process watcher has gone, its prefix is no longer held either.
  w->reset();
  r = Put("held", "a", R"(,"data":{"k":"3"})");
  ASSERT_TRUE((*cache)->WaitFor(r, steady_clock::now() + std::chrono::seconds(5)));
  std::weak_ptr<const boost::json::value> unheld =
      (*cache)->Get("/registry/core/configmaps/held/a")->Decoded();
  EXPECT_TRUE(unheld.expired());
}

TEST_F(WatchCacheTest, TooOldRevisionIsExpired) {
  WatchCache::Options options;
  options.history_events = 3;
  auto cache = WatchCache::Start(store_.get(), options);
  ASSERT_TRUE(cache.ok());
  store::Revision first = Put("ns", "a");
  store::Revision last = 0;
  for (int i = 0; i < 5; ++i) last = Put("ns", "b" + std::to_string(i));
  ASSERT_TRUE((*cache)->WaitFor(last, steady_clock::now() + std::chrono::seconds(5)));
  auto w = (*cache)->Watch("/registry/", first);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kCompacted);
  EXPECT_TRUE(w.status().message().starts_with("too old resource version: "));
  EXPECT_TRUE((*cache)->Watch("/registry/", last - 2).ok());
}

TEST_F(WatchCacheTest, SlowWatcherIsCutOffWithoutBlockingOthers) {
  WatchCache::Options options;
  options.watcher_buffer = 2;
  auto cache = WatchCache::Start(store_.get(), options);
  ASSERT_TRUE(cache.ok());
  auto slow = (*cache)->Watch("/registry/", (*cache)->revision());
  ASSERT_TRUE(slow.ok());
  store::Revision last = 0;
  for (int i = 0; i < 5; ++i) last = Put("ns", "x" + std::to_string(i));
  ASSERT_TRUE((*cache)->WaitFor(last, steady_clock::now() + std::chrono::seconds(5)));
  auto fast = (*cache)->Watch("/registry/", last - 1);
  ASSERT_TRUE(fast.ok());
  EXPECT_EQ(Drain(**fast, 1).size(), 1u);
  auto events = (*slow)->Next(steady_clock::now() + std::chrono::seconds(1));
  ASSERT_FALSE(events.ok());
  EXPECT_EQ(events.status().code(), Code::kResourceExhausted);
}

}  // namespace
}  // namespace kiso::apiserver
