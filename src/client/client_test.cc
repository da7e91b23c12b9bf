// One suite, three transports: every Client semantic against the in-process
// transport, against HTTPS to the same API server, and against HTTPS as a
// transport that only round-trips (its watches streamed to a writer) — the
// seed's claim that implementations of a tuple are interchangeable, made
// executable.
#include "client/client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/json.hpp>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "api/object.h"
#include "apiserver/api_server.h"
#include "apiserver/authn/credentials.h"
#include "client/api_servers.h"
#include "client/https_transport.h"
#include "client/in_process.h"
#include "client/informer.h"
#include "client/kubeconfig.h"
#include "client/shared_informers.h"
#include "client/work_queue.h"
#include "common/file.h"
#include "common/worker_pool.h"
#include "store/forwarding_store.h"
#include "support/h2_client.h"
#include "support/temp_dir.h"

namespace kiso::client {
namespace {

namespace json = boost::json;
using std::chrono::steady_clock;

const api::ResourceType& ConfigMaps() { return *api::FindResource("", "v1", "configmaps"); }

json::value ConfigMap(const std::string& name, const std::string& value) {
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata", json::object{{"name", name}, {"labels", json::object{{"app", "t"}}}}},
      {"data", json::object{{"k", value}}}};
}

// A store whose watches can be held: while held, their readers get no event
// (the API server's watch cache, its one watcher, falls behind the store), so
// a test can write behind the cache's back with the cache certain to hold the
// version before, instead of hoping it lags.
class HoldableStore : public store::ForwardingStore {
 public:
  explicit HoldableStore(std::unique_ptr<store::Store> inner)
      : ForwardingStore(inner.get()), owned_(std::move(inner)) {}

  Result<std::unique_ptr<store::Watch>> WatchRange(const store::KeyRange& range,
                                                   store::Revision after,
                                                   const store::WatchOptions& options) override {
    auto watch = ForwardingStore::WatchRange(range, after, options);
    if (!watch.ok()) return watch.status();
    return std::unique_ptr<store::Watch>(std::make_unique<HeldWatch>(this, std::move(*watch)));
  }

  void Hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  // Waits until the watches' reader has been handed every event up to
  // `revision` and has come back for more (so it has applied them).
  bool WaitCaughtUp(store::Revision revision) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10),
                        [&] { return delivered_ >= revision && asking_; });
  }

 private:
  class HeldWatch : public store::Watch {
   public:
    HeldWatch(HoldableStore* store, std::unique_ptr<store::Watch> inner)
        : store_(store), inner_(std::move(inner)) {}
    Result<std::vector<store::WatchEvent>> Next(
        std::chrono::steady_clock::time_point deadline) override {
      std::unique_lock lock(store_->mu_);
      store_->asking_ = true;
      store_->cv_.notify_all();
      if (pending_.empty()) {
        lock.unlock();
        auto events = inner_->Next(deadline);
        lock.lock();
        if (!events.ok()) return events;
        for (auto& e : *events) pending_.push_back(std::move(e));
      }
      store_->cv_.wait_until(lock, deadline, [&] { return !store_->held_ || cancelled_; });
      if (cancelled_) return Status(Code::kCancelled, "watch cancelled");
      if (store_->held_ || pending_.empty()) return std::vector<store::WatchEvent>{};
      std::vector<store::WatchEvent> out;
      out.swap(pending_);
      store_->delivered_ = std::max(store_->delivered_, out.back().kv.mod_revision);
      store_->asking_ = false;
      return out;
    }
    void Cancel() override {
      inner_->Cancel();
      std::lock_guard lock(store_->mu_);
      cancelled_ = true;
      store_->cv_.notify_all();
    }

   private:
    HoldableStore* store_;
    std::unique_ptr<store::Watch> inner_;
    std::vector<store::WatchEvent> pending_;  // Read from the store while held.
    bool cancelled_ = false;                  // Guarded by store_->mu_.
  };

  std::unique_ptr<store::Store> owned_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  store::Revision delivered_ = 0;  // The last revision handed to a reader.
  bool asking_ = false;            // The reader is in Next, for more.
};

// The API server's watch cache caught up with the store, then held there
// for as long as this lives.
struct Held {
  HoldableStore* store;
  explicit Held(HoldableStore* s) : store(s) {
    auto revision = store->CurrentRevision();
    EXPECT_TRUE(revision.ok() && store->WaitCaughtUp(*revision)) << "the cache did not catch up";
    store->Hold();
  }
  ~Held() { store->Release(); }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
};

// HTTPS as a transport that only round-trips: a watch's answer is a
// Response::stream that calls its writer (as a relayed aggregated API's is in
// process), read through Transport::Stream's default.
class RoundTripOnly : public Transport {
 public:
  explicit RoundTripOnly(std::shared_ptr<HttpsTransport> https) : https_(std::move(https)) {}
  apiserver::Response RoundTrip(const apiserver::Request& request) override {
    return https_->RoundTrip(request);
  }

 private:
  std::shared_ptr<HttpsTransport> https_;
};

// The parameter: how the client reaches the server ("in-process", "https",
// or "relayed": RoundTripOnly).
class ClientTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir("client");
    auto s = store::OpenStore("sqlite://" + dir_->File("kiso.db"));
    ASSERT_TRUE(s.ok());
    store_ = new HoldableStore(std::move(*s));
    apiserver::ApiServerOptions options;
    options.port = 0;
    options.data_dir = dir_->path();
    auto server = apiserver::ApiServer::Start(store_, options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete store_;
    delete dir_;
  }
  void SetUp() override {
    if (GetParam() == "in-process") {
      client_ = std::make_unique<Client>(std::make_shared<InProcessTransport>(server_), "test");
    } else {
      auto config = LoadKubeConfig(server_->kubeconfig_path());
      ASSERT_TRUE(config.ok()) << config.status().ToString();
      auto transport = HttpsTransport::Create(*config);
      ASSERT_TRUE(transport.ok()) << transport.status().ToString();
      if (GetParam() == "relayed") {
        client_ = std::make_unique<Client>(std::make_shared<RoundTripOnly>(*transport), "test");
      } else {
        client_ = std::make_unique<Client>(*transport, "test");
      }
    }
    ns_ = "ns-" + GetParam();
    json::value ns = json::object{
        {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object{{"name", ns_}}}};
    auto created = client_->Create(*api::FindResource("", "v1", "namespaces"), "", ns);
    ASSERT_TRUE(created.ok() || created.status().code() == Code::kAlreadyExists);
  }

  static testing::TempDir* dir_;
  static HoldableStore* store_;
  static apiserver::ApiServer* server_;
  std::unique_ptr<Client> client_;
  std::string ns_;
};

testing::TempDir* ClientTest::dir_ = nullptr;
HoldableStore* ClientTest::store_ = nullptr;
apiserver::ApiServer* ClientTest::server_ = nullptr;

TEST_P(ClientTest, CrudWithErrorsMappedToCodes) {
  auto created = client_->Create(ConfigMaps(), ns_, ConfigMap("crud", "1"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(api::GetString(*created, {"metadata", "uid"}).empty());
  EXPECT_EQ(client_->Create(ConfigMaps(), ns_, ConfigMap("crud", "1")).status().code(),
            Code::kAlreadyExists);
  auto got = client_->Get(ConfigMaps(), ns_, "crud");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(api::GetString(*got, {"data", "k"}), "1");
  json::value stale = *got;
  stale.at("data").as_object()["k"] = "2";
  ASSERT_TRUE(client_->Update(ConfigMaps(), ns_, stale).ok());
  auto conflict = client_->Update(ConfigMaps(), ns_, stale);  // Same resourceVersion again.
  EXPECT_EQ(conflict.status().code(), Code::kConflict);
  EXPECT_NE(conflict.status().message().find("the object has been modified"), std::string::npos);
  auto patched = client_->Patch(ConfigMaps(), ns_, "crud", PatchType::kMerge,
                                json::parse(R"({"data":{"k":"3"}})"));
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(api::GetString(*patched, {"data", "k"}), "3");
  EXPECT_EQ(client_->Create(ConfigMaps(), ns_, ConfigMap("Bad_Name", "1")).status().code(),
            Code::kInvalidArgument);
  ASSERT_TRUE(client_->Delete(ConfigMaps(), ns_, "crud").ok());
  EXPECT_EQ(client_->Get(ConfigMaps(), ns_, "crud").status().code(), Code::kNotFound);
  EXPECT_EQ(client_->Delete(ConfigMaps(), ns_, "crud").code(), Code::kNotFound);
}

// Writes the API server's watch cache has not seen yet (another server on the
// same store, say; here the store written directly, right before each
// request): an update starts from the cache's copy, and must neither lose such
// a write nor take a change that matches the stale copy for no change at all.
TEST_P(ClientTest, UpdatesNeverLoseWritesTheCacheHasNotSeen) {
  ASSERT_TRUE(client_->Create(ConfigMaps(), ns_, ConfigMap("behind", "0")).ok());
  const std::string key = ConfigMaps().StoreKey(ns_, "behind");
  auto write_behind = [&](const std::string& value) {
    auto kv = store_->Get(key);
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    json::value stored = json::parse(kv->value);
    stored.at("data").as_object()["k"] = value;
    ASSERT_TRUE(store_->Update(key, json::serialize(stored), kv->mod_revision).ok());
  };
  for (int i = 0; i < 5; ++i) {
    const std::string mine = "s" + std::to_string(i);
    {
      // A change of its own on top of a write the cache has not seen: the
      // cache's copy is out of date, its revision too.
      Held held(store_);
      write_behind(mine);
      auto patched = client_->Patch(
          ConfigMaps(), ns_, "behind", PatchType::kMerge,
          json::object{
              {"metadata", json::object{{"labels", json::object{{"round", std::to_string(i)}}}}}});
      ASSERT_TRUE(patched.ok()) << patched.status().ToString();
      EXPECT_EQ(api::GetString(*patched, {"data", "k"}), mine);
      EXPECT_EQ(api::GetString(*patched, {"metadata", "labels", "round"}), std::to_string(i));
    }
    {
      // A change back to what the cache holds: nothing to change by the
      // cache's copy, a real change of the store's all the same.
      Held held(store_);
      write_behind("x" + std::to_string(i));
      auto patched = client_->Patch(ConfigMaps(), ns_, "behind", PatchType::kMerge,
                                    json::object{{"data", json::object{{"k", mine}}}});
      ASSERT_TRUE(patched.ok()) << patched.status().ToString();
      EXPECT_EQ(api::GetString(*patched, {"data", "k"}), mine);
    }
    auto kv = store_->Get(key);
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ(api::GetString(json::parse(kv->value), {"data", "k"}), mine);
  }
}

// NamespaceLifecycle: a create needs its namespace, and not a terminating
// one. The watch cache answers; a namespace it has not seen yet (another
// server's, made a moment ago: here written to the store behind its back) is
// looked up in the store.
TEST_P(ClientTest, CreatesNeedTheirNamespaceAsTheCacheOrTheStoreHasIt) {
  const api::ResourceType& namespaces = *api::FindResource("", "v1", "namespaces");
  auto nowhere = client_->Create(ConfigMaps(), "nowhere-" + GetParam(), ConfigMap("c", "1"));
  EXPECT_EQ(nowhere.status().code(), Code::kNotFound) << nowhere.status().ToString();
  const std::string fresh = "fresh-" + GetParam();
  {
    Held held(store_);
    json::value ns =
        json::object{{"apiVersion", "v1"},
                     {"kind", "Namespace"},
                     {"metadata", json::object{{"name", fresh}, {"uid", api::NewUid()}}},
                     {"spec", json::object{{"finalizers", json::array{"kubernetes"}}}},
                     {"status", json::object{{"phase", "Active"}}}};
    ASSERT_TRUE(store_->Create(namespaces.StoreKey("", fresh), json::serialize(ns)).ok());
    auto created = client_->Create(ConfigMaps(), fresh, ConfigMap("c", "1"));
    EXPECT_TRUE(created.ok()) << created.status().ToString();
  }
  // Deleted: it stays, terminating, until its content is gone (no namespace
  // controller here); once the cache has seen that, creates there are refused.
  ASSERT_TRUE(client_->Delete(namespaces, "", fresh).ok());
  auto revision = store_->CurrentRevision();
  ASSERT_TRUE(revision.ok() && store_->WaitCaughtUp(*revision));
  auto refused = client_->Create(ConfigMaps(), fresh, ConfigMap("d", "1"));
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("because it is being terminated"), std::string::npos);
  EXPECT_EQ(client_->Get(ConfigMaps(), fresh, "d").status().code(), Code::kNotFound);
}

TEST_P(ClientTest, ListWithSelectorsAndWatchFromItsRevision) {
  for (const char* name : {"w1", "w2"}) {
    ASSERT_TRUE(client_->Create(ConfigMaps(), ns_, ConfigMap(name, "v")).ok());
  }
  ListOptions by_name;
  by_name.field_selector = "metadata.name=w2";
  auto list = client_->List(ConfigMaps(), ns_, by_name);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->at("items").as_array().size(), 1u);
  ListOptions options;
  options.label_selector = "app=t";
  options.resource_version = std::string(api::GetString(*list, {"metadata", "resourceVersion"}));
  auto watch = client_->Watch(ConfigMaps(), ns_, options);
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(client_
                  ->Patch(ConfigMaps(), ns_, "w1", PatchType::kStrategic,
                          json::parse(R"({"data":{"k":"x"}})"))
                  .ok());
  ASSERT_TRUE(client_->Delete(ConfigMaps(), ns_, "w2").ok());
  std::vector<std::string> seen;
  auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (seen.size() < 2 && steady_clock::now() < deadline) {
    auto events = (*watch)->Next(deadline);
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    for (const auto& e : *events) {
      if (e.type != "BOOKMARK") {
        seen.push_back(e.type + " " +
                       std::string(api::GetString(e.Object(), {"metadata", "name"})));
      }
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"MODIFIED w1", "DELETED w2"}));
  ASSERT_TRUE(client_->DeleteCollection(ConfigMaps(), ns_, {}).ok());
}

TEST_P(ClientTest, InProcessWatchesShareTheObjectTheServerDecodedOnce) {
  ASSERT_TRUE(client_->Create(ConfigMaps(), ns_, ConfigMap("shared", "x")).ok());
  auto list = client_->List(ConfigMaps(), ns_, {});
  ASSERT_TRUE(list.ok());
  ListOptions options;  // Every object of the namespace, as an informer watches: held decoded.
  options.resource_version = std::string(api::GetString(*list, {"metadata", "resourceVersion"}));
  std::vector<std::unique_ptr<WatchStream>> watches;
  for (int i = 0; i < 2; ++i) {
    auto watch = client_->Watch(ConfigMaps(), ns_, options);
    ASSERT_TRUE(watch.ok()) << watch.status().ToString();
    watches.push_back(std::move(*watch));
  }
  ASSERT_TRUE(client_
                  ->Patch(ConfigMaps(), ns_, "shared", PatchType::kMerge,
                          json::parse(R"({"data":{"k":"z"}})"))
                  .ok());
  std::vector<WatchEvent> got;
  for (auto& watch : watches) {
    auto deadline = steady_clock::now() + std::chrono::seconds(10);
    std::vector<WatchEvent> events;
    while (events.empty() && steady_clock::now() < deadline) {
      auto next = watch->Next(deadline);
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      for (auto& e : *next) {
        if (e.type != "BOOKMARK") events.push_back(std::move(e));
      }
    }
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, "MODIFIED");
    EXPECT_EQ(api::GetString(events[0].Object(), {"data", "k"}), "z");
    got.push_back(std::move(events[0]));
  }
  if (GetParam() == "in-process") {
    // One decode for both, shared; without managedFields, as informers keep objects.
    ASSERT_TRUE(got[0].shared && got[1].shared);
    EXPECT_EQ(got[0].shared.get(), got[1].shared.get());
    EXPECT_EQ(api::Find(got[0].Object(), {"metadata", "managedFields"}), nullptr);
  } else {
    // Over HTTPS the object is the client's own, whole.
    EXPECT_FALSE(got[0].shared);
    EXPECT_NE(api::Find(got[0].Object(), {"metadata", "managedFields"}), nullptr);
  }
}

size_t ThreadsOfThisProcess() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

TEST_P(ClientTest, WatchWaitsUntilItsDeadlineAndCancelWakesIt) {
  ASSERT_TRUE(client_->Create(ConfigMaps(), ns_, ConfigMap("c1", "v")).ok());
  auto list = client_->List(ConfigMaps(), ns_, {});
  ASSERT_TRUE(list.ok());
  ListOptions options;
  options.resource_version = std::string(api::GetString(*list, {"metadata", "resourceVersion"}));
  const size_t threads_before = ThreadsOfThisProcess();
  std::vector<std::unique_ptr<WatchStream>> watches;
  for (int i = 0; i < 20; ++i) {
    auto watch = client_->Watch(ConfigMaps(), ns_, options);
    ASSERT_TRUE(watch.ok()) << watch.status().ToString();
    watches.push_back(std::move(*watch));
  }
  // A watch is read by its reader's thread, none of its own. Over HTTPS the
  // server, in this process too, may start a worker for the requests, never
  // one a watch.
  if (GetParam() == "in-process") {
    EXPECT_EQ(ThreadsOfThisProcess(), threads_before);
  } else if (GetParam() == "https") {
    EXPECT_LT(ThreadsOfThisProcess(), threads_before + 5);
  } else {
    // A stream that calls its writer holds a thread while it lasts.
    EXPECT_GE(ThreadsOfThisProcess(), threads_before + 20);
  }
  WatchStream& watch = *watches.front();
  // Nothing happens: an empty answer at the deadline, not before.
  auto deadline = steady_clock::now() + std::chrono::milliseconds(200);
  auto quiet = watch.Next(deadline);
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  EXPECT_TRUE(quiet->empty());
  EXPECT_GE(steady_clock::now(), deadline);
  // An event wakes a waiting reader.
  ASSERT_TRUE(
      client_
          ->Patch(ConfigMaps(), ns_, "c1", PatchType::kMerge, json::parse(R"({"data":{"k":"y"}})"))
          .ok());
  auto events = watch.Next(steady_clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->front().type, "MODIFIED");
  EXPECT_EQ(api::GetString(events->front().Object(), {"data", "k"}), "y");
  // Cancel from another thread ends a Next that would wait 30 s.
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    watch.Cancel();
  });
  auto cancelled = watch.Next(steady_clock::now() + std::chrono::seconds(30));
  canceller.join();
  EXPECT_EQ(cancelled.status().code(), Code::kCancelled) << cancelled.status().ToString();
  watches.clear();
  ASSERT_TRUE(client_->DeleteCollection(ConfigMaps(), ns_, {}).ok());
}

// What the API server relays for an aggregated API (and a followed log): a
// streamed answer over HTTPS, written on to the caller's writer as it comes,
// until the writer takes no more or cancels it.
class CollectingWriter : public apiserver::StreamWriter {
 public:
  bool Write(std::string_view data) override {
    std::lock_guard lock(mu_);
    received_ += data;
    return received_.find('\n') == std::string::npos;  // Takes no more after a whole line.
  }
  // Only once the test gives up (Stop): a stream must end otherwise.
  bool Stopping() const override { return stop_; }
  void OnCancel(const std::function<void()>& cancel) override {
    std::lock_guard lock(mu_);
    cancel_ = cancel;
    cv_.notify_all();
  }
  // Waits for the stream to say how to cancel it, then does.
  bool CancelBy(steady_clock::time_point deadline) {
    std::function<void()> cancel;
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_until(lock, deadline, [&] { return cancel_ != nullptr; })) return false;
      cancel = cancel_;
    }
    cancel();
    return true;
  }
  void Stop() { stop_ = true; }
  std::string received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string received_;
  std::function<void()> cancel_;
  std::atomic<bool> stop_{false};
};

TEST_P(ClientTest, AStreamedAnswerGoesToItsWriterUntilItTakesNoMoreOrCancels) {
  if (GetParam() != "https") GTEST_SKIP() << "HttpsTransport's streamed answers";
  auto config = LoadKubeConfig(server_->kubeconfig_path());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto transport = HttpsTransport::Create(*config);
  ASSERT_TRUE(transport.ok()) << transport.status().ToString();
  auto watch_from_now = [&] {
    auto list = client_->List(ConfigMaps(), ns_, {});
    EXPECT_TRUE(list.ok());
    apiserver::Request req;
    req.method = "GET";
    req.path = "/api/v1/namespaces/" + ns_ + "/configmaps";
    req.query.emplace("watch", "true");
    req.query.emplace(
        "resourceVersion",
        list.ok() ? std::string(api::GetString(*list, {"metadata", "resourceVersion"})) : "");
    return (*transport)->RoundTrip(req);
  };
  // An event reaches the writer; once it takes no more, the stream returns.
  apiserver::Response first = watch_from_now();
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_TRUE(first.stream);
  CollectingWriter writer;
  auto streamed = std::async(std::launch::async, [&] { first.stream(writer); });
  ASSERT_TRUE(client_->Create(ConfigMaps(), ns_, ConfigMap("streamed", "v")).ok());
  EXPECT_EQ(streamed.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  writer.Stop();  // (Ends it, had it not.)
  streamed.get();
  EXPECT_NE(writer.received().find(R"("type":"ADDED")"), std::string::npos) << writer.received();
  EXPECT_NE(writer.received().find(R"("name":"streamed")"), std::string::npos);
  // A quiet stream ends as soon as its writer cancels it.
  apiserver::Response second = watch_from_now();
  ASSERT_TRUE(second.stream);
  CollectingWriter quiet;
  auto waiting = std::async(std::launch::async, [&] { second.stream(quiet); });
  EXPECT_TRUE(quiet.CancelBy(steady_clock::now() + std::chrono::seconds(30)));
  EXPECT_EQ(waiting.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  quiet.Stop();
  waiting.get();
  EXPECT_EQ(quiet.received(), "");
  ASSERT_TRUE(client_->DeleteCollection(ConfigMaps(), ns_, {}).ok());
}

TEST_P(ClientTest, InformerFollowsChanges) {
  std::mutex mu;
  std::vector<std::string> events;
  Informer informer(client_.get(), &ConfigMaps(),
                    [&](const json::value* old, const json::value& obj, bool deleted) {
                      std::lock_guard lock(mu);
                      if (api::GetString(obj, {"metadata", "namespace"}) != ns_) return;
                      events.push_back(std::string(deleted ? "delete "
                                                   : old   ? "update "
                                                           : "add ") +
                                       std::string(api::GetString(obj, {"metadata", "name"})));
                    });
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(steady_clock::now() + std::chrono::seconds(10)));
  ASSERT_TRUE(client_->Create(ConfigMaps(), ns_, ConfigMap("inf", "1")).ok());
  ASSERT_TRUE(client_->Delete(ConfigMaps(), ns_, "inf").ok());
  auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (events.size() >= 2) break;
    }
    // The informer delivers on its own thread; poll its output with a deadline.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(events, (std::vector<std::string>{"add inf", "delete inf"}));
  EXPECT_FALSE(informer.Get(ns_, "inf").has_value());
}

TEST_P(ClientTest, InformerItemsAreSharedSnapshotsWithoutManagedFields) {
  Informer informer(client_.get(), &ConfigMaps(), nullptr);
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(steady_clock::now() + std::chrono::seconds(10)));
  ASSERT_TRUE(client_->Create(ConfigMaps(), ns_, ConfigMap("shared", "1")).ok());
  // The cached value of "shared" in `items`, or "" when absent.
  auto value_in = [&](const std::vector<Informer::Object>& items) -> std::string {
    for (const auto& item : items) {
      if (api::GetString(*item, {"metadata", "namespace"}) == ns_ &&
          api::GetString(*item, {"metadata", "name"}) == "shared")
        return std::string(api::GetString(*item, {"data", "k"}));
    }
    return "";
  };
  // The informer fills its cache on its own thread: poll with a deadline.
  auto wait_for = [&](const std::string& want) {
    auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (value_in(informer.Items()) != want && steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return value_in(informer.Items());
  };
  ASSERT_EQ(wait_for("1"), "1");
  const std::vector<Informer::Object> before = informer.Items();
  json::value changed = ConfigMap("shared", "2");
  ASSERT_TRUE(client_->Update(ConfigMaps(), ns_, changed).ok());
  ASSERT_EQ(wait_for("2"), "2");
  // What was handed out is the object as it was; the cache holds a new one.
  EXPECT_EQ(value_in(before), "1");
  EXPECT_EQ(std::string(api::GetString(*informer.Get(ns_, "shared"), {"data", "k"})), "2");
  // The server keeps managedFields; the cache does not.
  auto stored = client_->Get(ConfigMaps(), ns_, "shared");
  ASSERT_TRUE(stored.ok());
  EXPECT_NE(api::Find(*stored, {"metadata", "managedFields"}), nullptr);
  EXPECT_EQ(api::Find(*informer.Get(ns_, "shared"), {"metadata", "managedFields"}), nullptr);
  ASSERT_TRUE(client_->Delete(ConfigMaps(), ns_, "shared").ok());
}

TEST_P(ClientTest, SharedInformerServesManyHandlersAndReplaysToLateOnes) {
  ASSERT_TRUE(client_->Create(ConfigMaps(), ns_, ConfigMap("shared-a", "1")).ok());
  SharedInformers shared(client_.get());
  std::mutex mu;
  std::vector<std::string> first, late;
  auto record = [&](std::vector<std::string>& into) {
    return [&, into_ptr = &into](const json::value*, const json::value& obj, bool deleted) {
      if (api::GetString(obj, {"metadata", "namespace"}) != ns_) return;
      std::lock_guard lock(mu);
      into_ptr->push_back(std::string(deleted ? "-" : "+") +
                          std::string(api::GetString(obj, {"metadata", "name"})));
    };
  };
  Informer* informer = shared.For(ConfigMaps());
  EXPECT_EQ(informer, shared.For(ConfigMaps()));  // One per kind.
  int id = informer->AddHandler(record(first));
  shared.Start();
  ASSERT_TRUE(informer->WaitForSync(steady_clock::now() + std::chrono::seconds(10)));
  informer->AddHandler(record(late));  // Started: it gets the cache as adds at once.
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(late, (std::vector<std::string>{"+shared-a"}));
  }
  informer->RemoveHandler(id);
  ASSERT_TRUE(client_->Delete(ConfigMaps(), ns_, "shared-a").ok());
  auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (late.size() == 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Polling the informer's output.
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(late, (std::vector<std::string>{"+shared-a", "-shared-a"}));
  EXPECT_EQ(first, (std::vector<std::string>{"+shared-a"}));  // Removed before the delete.
}

// HTTP/2 to the same server: many requests and watches as streams of one
// connection, written to meanwhile by another client (the cache's thread
// wakes the watches while the connection's thread pulls them), one watch
// cancelled half way.
TEST_P(ClientTest, Http2StreamsShareOneConnection) {
  if (GetParam() != "https") GTEST_SKIP() << "HTTP/2 is the HTTPS server's";
  testing::H2Client h2(server_->port(), server_->admin_token());
  ASSERT_TRUE(h2.ok());
  const std::string base = "/api/v1/namespaces/" + ns_ + "/configmaps";
  int32_t all = h2.Submit("GET", base + "?watch=1");
  int32_t labelled = h2.Submit("GET", base + "?watch=1&labelSelector=app%3Dt");
  int32_t cancelled = h2.Submit("GET", base + "?watch=1");
  ASSERT_TRUE(h2.RunUntil(
      [&] { return h2.stream(all).status == 200 && h2.stream(cancelled).status == 200; },
      std::chrono::seconds(10)));
  constexpr std::ptrdiff_t kWrites = 50;
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) {
      ASSERT_TRUE(client_
                      ->Create(*api::FindResource("", "v1", "configmaps"), ns_,
                               ConfigMap("w-" + std::to_string(i), "v"))
                      .ok());
    }
  });
  std::vector<int32_t> creates;
  creates.reserve(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    creates.push_back(
        h2.Submit("POST", base, json::serialize(ConfigMap("h-" + std::to_string(i), "v"))));
  }
  h2.Cancel(cancelled);
  auto events = [&](int32_t id) {
    return std::count(h2.stream(id).data.begin(), h2.stream(id).data.end(), '\n');
  };
  bool done = h2.RunUntil(
      [&] {
        return std::all_of(creates.begin(), creates.end(),
                           [&](int32_t id) { return h2.stream(id).closed; }) &&
               events(all) >= 2 * kWrites && events(labelled) >= 2 * kWrites;
      },
      std::chrono::seconds(30));
  writer.join();
  ASSERT_TRUE(done) << events(all) << " events";
  for (int32_t id : creates) EXPECT_EQ(h2.stream(id).status, 201) << h2.stream(id).data;
  EXPECT_FALSE(h2.stream(all).closed);
  EXPECT_TRUE(h2.stream(cancelled).closed);
  EXPECT_NE(h2.stream(all).data.find("\"name\":\"w-49\""), std::string::npos);
  EXPECT_NE(h2.stream(all).data.find("\"name\":\"h-49\""), std::string::npos);
}

// One API server over HTTPS on SQLite in a temporary directory, and its
// admin kubeconfig: what the transport's failover tests go to.
class HttpsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = store::OpenStore("sqlite://" + dir_.File("kiso.db"));
    ASSERT_TRUE(store_.ok());
    apiserver::ApiServerOptions options;
    options.port = 0;
    options.data_dir = dir_.path();
    server_ = apiserver::ApiServer::Start(store_->get(), options);
    ASSERT_TRUE(server_.ok()) << server_.status().ToString();
    auto loaded = LoadKubeConfig((*server_)->kubeconfig_path());
    ASSERT_TRUE(loaded.ok());
    config_ = *loaded;
  }

  testing::TempDir dir_{"failover"};
  Result<std::unique_ptr<store::Store>> store_ = Status(Code::kUnavailable, "");
  Result<std::unique_ptr<apiserver::ApiServer>> server_ = Status(Code::kUnavailable, "");
  KubeConfig config_;
};

TEST_F(HttpsTransportTest, GoesToTheNextServerWhenOneCannotBeReached) {
  const KubeConfig* config = &config_;
  auto transport = HttpsTransport::Create(*config);
  ASSERT_TRUE(transport.ok());
  const std::string live = config->server;
  const std::string dead = "https://127.0.0.1:1";  // Nothing listens there: refused at once.
  EXPECT_EQ((*transport)->SetServers({"http://127.0.0.1:1"}).code(), Code::kInvalidArgument);
  EXPECT_EQ((*transport)->SetServers({}).code(), Code::kInvalidArgument);
  EXPECT_EQ((*transport)->server(), live);  // Nothing changed by a refused list.
  // The one in use stays in use while it is listed: a dead one, then both.
  ASSERT_TRUE((*transport)->SetServers({dead}).ok());
  ASSERT_TRUE((*transport)->SetServers({dead, live}).ok());
  EXPECT_EQ((*transport)->server(), dead);
  Client client(*transport, "test");
  auto got = client.Get(*api::FindResource("", "v1", "namespaces"), "", "default");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*transport)->server(), live);  // It stays with the one that answered.
  // Only dead servers: an error naming each, not a hang.
  ASSERT_TRUE((*transport)->SetServers({dead, "https://127.0.0.1:2"}).ok());
  auto failed = client.Get(*api::FindResource("", "v1", "namespaces"), "", "default");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("127.0.0.1:2"), std::string::npos)
      << failed.status().message();
}

// A TLS server on 127.0.0.1 for one connection: reads a request's head, then
// writes `answer` in `pieces` parts `pause` apart, or only the first
// `sent_pieces` of them and nothing more until the client goes.
class PacedTlsServer {
 public:
  PacedTlsServer(const std::string& dir, std::string answer, int pieces, int sent_pieces,
                 std::chrono::milliseconds pause)
      : tls_(boost::asio::ssl::context::tls_server), acceptor_(io_) {
    auto creds = apiserver::LoadOrCreateCredentials(dir, "127.0.0.1", 1, {});
    EXPECT_TRUE(creds.ok()) << creds.status().ToString();
    tls_.use_certificate_chain(boost::asio::buffer(creds->server_cert_pem));
    tls_.use_private_key(boost::asio::buffer(creds->server_key_pem),
                         boost::asio::ssl::context::pem);
    using boost::asio::ip::tcp;
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, answer = std::move(answer), pieces, sent_pieces, pause] {
      boost::system::error_code ec;
      boost::asio::ssl::stream<tcp::socket> stream(io_, tls_);
      acceptor_.accept(stream.next_layer(), ec);
      if (!ec) stream.handshake(boost::asio::ssl::stream_base::server, ec);
      std::string head;
      char c = 0;
      while (!ec && !head.ends_with("\r\n\r\n")) {
        if (boost::asio::read(stream, boost::asio::buffer(&c, 1), ec) == 1) head += c;
      }
      const size_t piece = (answer.size() + pieces - 1) / pieces;
      for (int i = 0; i < sent_pieces && !ec; ++i) {
        if (i > 0) std::this_thread::sleep_for(pause);
        std::string_view part = std::string_view(answer).substr(i * piece, piece);
        boost::asio::write(stream, boost::asio::buffer(part), ec);
      }
      while (!ec) boost::asio::read(stream, boost::asio::buffer(&c, 1), ec);  // Until it goes.
    });
  }
  ~PacedTlsServer() { thread_.join(); }
  int port() const { return port_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ssl::context tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::thread thread_;
};

std::shared_ptr<HttpsTransport> TransportTo(int port, std::chrono::milliseconds timeout) {
  KubeConfig config;
  config.server = fmt::format("https://127.0.0.1:{}", port);
  config.host = "127.0.0.1";
  config.port = port;
  config.insecure = true;
  TransportOptions options;
  options.timeout = timeout;
  auto transport = HttpsTransport::Create(config, options);
  EXPECT_TRUE(transport.ok()) << transport.status().ToString();
  return *transport;
}

std::string AnswerWithBody(const std::string& body) {
  return fmt::format(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      "Content-Length: {}\r\n\r\n{}",
      body.size(), body);
}

TEST(HttpsTransportReadTest, AnAnswerThatComesInPiecesIsReadWhole) {
  testing::TempDir dir("paced");
  std::string body(3 << 20, 'x');
  for (size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + i / 4096 % 26);
  PacedTlsServer server(dir.path(), AnswerWithBody(body), 5, 5, std::chrono::milliseconds(30));
  apiserver::Request req;
  req.method = "GET";
  req.path = "/api/v1/pods";
  auto res = TransportTo(server.port(), std::chrono::seconds(30))->RoundTrip(req);
  EXPECT_EQ(res.status, 200) << res.body.substr(0, 200);
  EXPECT_TRUE(res.body == body) << res.body.size() << " bytes";
}

TEST(HttpsTransportReadTest, AnAnswerThatStopsHalfWayEndsAtTheDeadline) {
  testing::TempDir dir("stalled");
  std::string body(1 << 20, 'y');
  PacedTlsServer server(dir.path(), AnswerWithBody(body), 4, 2, std::chrono::milliseconds(10));
  apiserver::Request req;
  req.method = "GET";
  req.path = "/api/v1/pods";
  auto res = TransportTo(server.port(), std::chrono::milliseconds(400))->RoundTrip(req);
  EXPECT_EQ(res.status, 503);
  EXPECT_NE(res.body.find("no answer within 400 ms"), std::string::npos) << res.body;
}

TEST(KubeConfigTest, ListsTheClustersServersInAnExtensionKeepingOthers) {
  const std::string yaml =
      "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
      "    server: https://10.0.0.1:6443\n    extensions:\n    - name: other\n"
      "      extension: {a: 1}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n"
      "- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";
  testing::TempDir dir("kubeconfig");
  auto load = [&](const std::string& text) {
    EXPECT_TRUE(WriteFileAtomic(dir.File("config"), text).ok());
    return LoadKubeConfig(dir.File("config"));
  };
  auto plain = load(yaml);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(plain->servers.empty());
  auto listed = WithServers(yaml, {"https://10.0.0.1:6443", "https://10.0.0.2:6443"});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  // Listed again: replaced, not added to; the other extension kept.
  listed = WithServers(*listed, {"https://10.0.0.2:6443", "https://[fd00::3]:7443"});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_NE(listed->find("name: other"), std::string::npos) << *listed;
  auto config = load(*listed);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "https://10.0.0.1:6443");
  EXPECT_EQ(config->token, "t");
  EXPECT_EQ(config->servers,
            (std::vector<std::string>{"https://10.0.0.2:6443", "https://[fd00::3]:7443"}));
  // What is not a server, or not a kubeconfig, is refused.
  EXPECT_EQ(WithServers(yaml, {"http://10.0.0.2:6443"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(WithServers("[1, 2]", {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(WithServers("a: [", {}).status().code(), Code::kInvalidArgument);
  std::string bad = *listed;
  bad.replace(bad.find("https://10.0.0.2"), 8, "ftp://");
  EXPECT_EQ(load(bad).status().code(), Code::kInvalidArgument);
}

TEST_F(HttpsTransportTest, FailsOverToTheServersItsKubeconfigLists) {
  const KubeConfig* config = &config_;
  const std::string live = config->server;
  auto dead = AtServer(*config, "https://127.0.0.1:1");  // Its own server: nothing listens.
  ASSERT_TRUE(dead.ok());
  dead->servers = {"https://127.0.0.1:1", live};
  auto transport = HttpsTransport::Create(*dead);
  ASSERT_TRUE(transport.ok());
  EXPECT_EQ((*transport)->server(), "https://127.0.0.1:1");
  Client client(*transport, "test");
  auto got = client.Get(*api::FindResource("", "v1", "namespaces"), "", "default");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*transport)->server(), live);
}

TEST(ApiServerWatchTest, TheUrlsOfTheKubernetesSlice) {
  json::value slice = json::parse(R"({
    "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
    "endpoints": [
      {"addresses": ["127.0.0.3"], "conditions": {"ready": true}},
      {"addresses": ["127.0.0.2"]},
      {"addresses": ["127.0.0.9"], "conditions": {"ready": false}},
      {"addresses": ["fd00::1"], "conditions": {"ready": true}}]})");
  EXPECT_EQ(ApiServerWatch::UrlsOf(slice),
            (std::vector<std::string>{"https://127.0.0.2:6443", "https://127.0.0.3:6443",
                                      "https://[fd00::1]:6443"}));
  EXPECT_TRUE(ApiServerWatch::UrlsOf(json::parse(R"({"endpoints": []})")).empty());
  EXPECT_TRUE(ApiServerWatch::UrlsOf(json::parse(R"({"ports": [{"port": 0}], "endpoints": [
        {"addresses": ["127.0.0.2"]}]})"))
                  .empty());
}

INSTANTIATE_TEST_SUITE_P(Transports, ClientTest,
                         ::testing::Values("in-process", "https", "relayed"), [](const auto& info) {
                           return info.param == "in-process" ? "in_process" : info.param;
                         });

TEST(WorkQueue, DeduplicatesAndNeverHandsOneKeyToTwoWorkers) {
  WorkQueue q;
  q.Add("a");
  q.Add("a");
  q.Add("b");
  auto first = q.Get();
  ASSERT_EQ(first, "a");
  q.Add("a");  // While "a" is processing: queued again only after Done.
  EXPECT_EQ(q.Get(), "b");
  q.Done("b");
  q.Done("a");
  EXPECT_EQ(q.Get(), "a");
  q.Done("a");
  q.ShutDown();
  EXPECT_FALSE(q.Get().has_value());
}

// A key taken out of turn (a test's own pass) is never processed beside a
// worker's: Claim waits for the worker's Done, and a queued copy waits for
// the claimant's Done.
TEST(WorkQueue, ClaimedKeyIsNeverProcessedTwiceAtOnce) {
  WorkQueue q;
  q.Add("a");
  ASSERT_EQ(q.Get(), "a");
  std::atomic<bool> claimed{false};
  std::thread claimant([&] {
    EXPECT_TRUE(q.Claim("a"));
    claimed = true;
  });
  q.Add("a");  // Changed while a worker has it.
  EXPECT_FALSE(claimed.load());
  q.Done("a");
  claimant.join();
  EXPECT_TRUE(claimed.load());
  // "a" is queued again, but the claimant has it: a worker gets "b" first.
  q.Add("b");
  EXPECT_EQ(q.Get(), "b");
  q.Done("b");
  q.Done("a");
  EXPECT_EQ(q.Get(), "a");  // The change seen meanwhile is processed after.
  q.Done("a");
  q.ShutDown();
  EXPECT_FALSE(q.Claim("a"));
}

// A key delayed many times waits once, at the earliest of its times: a
// periodic resync added on every sync must not pile up timers.
TEST(WorkQueue, DelayedKeyWaitsOnceAtItsEarliestTime) {
  WorkQueue q;
  q.AddAfter("a", std::chrono::hours(1));
  for (int i = 0; i < 100; ++i) q.AddAfter("a", std::chrono::milliseconds(1));
  q.AddAfter("a", std::chrono::hours(2));
  q.AddAfter("b", std::chrono::milliseconds(30));
  EXPECT_EQ(q.Get(), "a");  // Due after a millisecond, not an hour.
  q.Done("a");
  EXPECT_EQ(q.Get(), "b");  // "a" was not handed out again.
  q.Done("b");
  q.ShutDown();
  EXPECT_FALSE(q.Get().has_value());
}

// Served on a pool (what controllers do): keys run as they come, at most
// max_active at once, never one key twice at once, and a delayed key waits
// for the pool's timer, not for a thread of the queue's.
TEST(WorkQueue, ServedKeysRunOnAPoolWithinTheirLimit) {
  WorkerPool pool(16, std::chrono::milliseconds(100));
  WorkQueue q;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> passes;
  std::set<std::string> running;
  int in_flight = 0;
  int most = 0;
  bool overlap = false;
  q.Serve(&pool, 3, [&](const std::string& key) {
    {
      std::lock_guard lock(mu);
      overlap = overlap || !running.insert(key).second;
      most = std::max(most, ++in_flight);
    }
    std::this_thread::yield();  // Room for another worker to start meanwhile.
    {
      std::lock_guard lock(mu);
      running.erase(key);
      --in_flight;
      ++passes[key];
      cv.notify_all();
    }
    q.Done(key);
  });
  for (int round = 0; round < 20; ++round) {
    for (int k = 0; k < 10; ++k) q.Add("k" + std::to_string(k));
  }
  const auto added = steady_clock::now();
  q.AddAfter("late", std::chrono::milliseconds(30));
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10),
                          [&] { return passes.size() == 11 && passes.contains("late"); }));
  EXPECT_GE(steady_clock::now() - added, std::chrono::milliseconds(30));
  EXPECT_LE(most, 3);
  EXPECT_FALSE(overlap);
  for (const auto& [key, n] : passes) EXPECT_GE(n, 1) << key;
  lock.unlock();
  q.ShutDown();
}

TEST(WorkQueue, ShutDownWaitsForThePassUnderWayAndTakesBackItsTimers) {
  WorkerPool pool(4);
  WorkQueue q;
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  std::atomic<bool> finished{false};
  q.Serve(&pool, 1, [&](const std::string& key) {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    finished = true;
    lock.unlock();
    q.Done(key);
  });
  q.AddAfter("much-later", std::chrono::hours(1));
  q.Add("now");
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  std::thread stopper([&] { q.ShutDown(); });
  {
    std::lock_guard lock(mu);
    release = true;
    cv.notify_all();
  }
  stopper.join();  // Returns (an hour's timer taken back), after the pass.
  EXPECT_TRUE(finished.load());
  q.Add("after");  // Ignored: nothing runs once shut down.
}

TEST(WorkerPool, TimedJobsRunInTheirOrderAndACancelledOneNever) {
  WorkerPool pool(1, std::chrono::milliseconds(50));  // One worker: one order.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> ran;
  auto record = [&](int n) {
    return [&, n] {
      std::lock_guard lock(mu);
      ran.push_back(n);
      cv.notify_all();
    };
  };
  auto now = steady_clock::now();
  // The worker keeps the time for the hour's job first: a sooner one, and a
  // job to run now, must wake it.
  pool.RunAt(now + std::chrono::hours(1), record(100));
  uint64_t late = pool.RunAt(now + std::chrono::milliseconds(600), record(3));
  uint64_t cancelled = pool.RunAt(now + std::chrono::milliseconds(500), record(99));
  pool.RunAt(now + std::chrono::milliseconds(400), record(2));
  pool.RunAt(now + std::chrono::milliseconds(200), record(1));
  pool.Run(record(0));
  EXPECT_TRUE(pool.Cancel(cancelled));
  EXPECT_FALSE(pool.Cancel(cancelled));
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return ran.size() >= 4; }));
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3}));
  lock.unlock();
  EXPECT_FALSE(pool.Cancel(late));  // Ran already.
}  // The hour's job is dropped: the pool ends without waiting for it.

}  // namespace
}  // namespace kiso::client
