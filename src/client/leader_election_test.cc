// LeaderElector against a real in-process API server on SQLite: candidates
// race for one Lease; a crashed leader's Lease is taken over once it expires,
// a stopped one's at once; a leader that cannot renew steps down before
// anyone else may take over.
#include "client/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <memory>
#include <thread>

#include "api/resources.h"
#include "apiserver/api_server.h"
#include "client/in_process.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace kiso::client {
namespace {
namespace json = boost::json;
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

// Answers 503 while `failing`, as a server that cannot be reached.
class SwitchedTransport : public Transport {
 public:
  explicit SwitchedTransport(apiserver::ApiServer* server) : inner_(server) {}
  apiserver::Response RoundTrip(const apiserver::Request& request) override {
    if (failing) {
      apiserver::Response r;
      r.status = 503;
      r.body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":503})";
      return r;
    }
    return inner_.RoundTrip(request);
  }
  bool InProcess() const override { return true; }
  std::atomic<bool> failing{false};

 private:
  InProcessTransport inner_;
};

// One candidate: its elector, and whether it acts (between its callbacks).
struct Candidate {
  Candidate(apiserver::ApiServer* server, const std::string& id, LeaderElectionOptions o)
      : id(id), transport(std::make_shared<SwitchedTransport>(server)), client(transport, id) {
    o.identity = id;
    elector = std::make_unique<LeaderElector>(
        &client, o, [this] { acting = true; },
        [this] {
          acting = false;
          stopped_at = Steady::now();
        });
  }
  std::string id;
  std::shared_ptr<SwitchedTransport> transport;
  Client client;
  std::atomic<bool> acting{false};
  std::atomic<Steady::time_point> stopped_at{};
  std::unique_ptr<LeaderElector> elector;
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore("sqlite://" + dir_.File("kiso.db"));
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    apiserver::ApiServerOptions options;
    options.port = 0;
    options.data_dir = dir_.path();
    auto server = apiserver::ApiServer::Start(store_.get(), options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    client_ = std::make_unique<Client>(std::make_shared<InProcessTransport>(server_.get()), "test");
  }

  static LeaderElectionOptions Options() {
    LeaderElectionOptions o;
    o.lease_name = "test-controller";
    o.lease_duration = milliseconds(1500);
    o.renew_deadline = milliseconds(1000);
    o.retry_period = milliseconds(200);
    return o;
  }

  LeaseRecord Lease() {
    auto got = client_->Get(*api::FindResource("coordination.k8s.io", "v1", "leases"),
                            "kube-system", "test-controller");
    return got.ok() ? LeaseRecordOf(*got) : LeaseRecord{};
  }

  // Polls `pred` every 5 ms for up to `limit`; how long it took, or nullopt.
  template <typename P>
  static std::optional<milliseconds> Within(milliseconds limit, P pred) {
    auto start = Steady::now();
    while (Steady::now() - start < limit) {
      if (pred()) return std::chrono::duration_cast<milliseconds>(Steady::now() - start);
      std::this_thread::sleep_for(milliseconds(5));
    }
    return std::nullopt;
  }

  testing::TempDir dir_{"leader"};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(LeaderElectionTest, OptionsMustLeaveTheLeaderTimeToStepDown) {
  auto o = Options();
  o.identity = "a";
  EXPECT_TRUE(ValidateLeaderElection(o).ok());
  o.renew_deadline = o.lease_duration;
  EXPECT_EQ(ValidateLeaderElection(o).code(), Code::kInvalidArgument);
  o = Options();
  o.identity = "a";
  o.retry_period = o.renew_deadline;
  EXPECT_EQ(ValidateLeaderElection(o).code(), Code::kInvalidArgument);
  o = Options();
  EXPECT_EQ(ValidateLeaderElection(o).code(), Code::kInvalidArgument);  // No identity.
}

TEST_F(LeaderElectionTest, OneOfThreeCandidatesLeadsAndTheLeaseNamesIt) {
  Candidate a(server_.get(), "a", Options()), b(server_.get(), "b", Options()),
      c(server_.get(), "c", Options());
  a.elector->Start();
  b.elector->Start();
  c.elector->Start();
  ASSERT_TRUE(Within(milliseconds(5000), [&] { return a.acting || b.acting || c.acting; }));
  // Several renewals later, still exactly one.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(int{a.acting} + int{b.acting} + int{c.acting}, 1);
    std::this_thread::sleep_for(milliseconds(100));  // Observing a steady state, not waiting.
  }
  LeaseRecord lease = Lease();
  Candidate& leader = a.acting ? a : b.acting ? b : c;
  EXPECT_EQ(lease.holder, leader.id);
  EXPECT_EQ(lease.lease_duration_seconds, 2);  // 1.5 s, rounded up.
  EXPECT_EQ(lease.transitions, 0);
  EXPECT_FALSE(lease.renew_time.empty());
  c.elector->Stop();
  b.elector->Stop();
  a.elector->Stop();
}

TEST_F(LeaderElectionTest, ACrashedLeadersLeaseIsTakenOverOnceItExpires) {
  Candidate a(server_.get(), "a", Options());
  a.elector->Start();
  ASSERT_TRUE(Within(milliseconds(5000), [&] { return a.acting.load(); }));
  Candidate b(server_.get(), "b", Options());
  b.elector->Start();
  std::this_thread::sleep_for(milliseconds(300));  // b has seen a renew.
  EXPECT_FALSE(b.acting);
  auto crash = Steady::now();
  a.elector->Abandon();  // As kill -9: nothing released.
  ASSERT_TRUE(Within(milliseconds(5000), [&] { return b.acting.load(); }));
  auto took = Steady::now() - crash;
  // Not before the lease (as b saw it renewed) ran out; within it plus a retry period.
  EXPECT_GE(took, milliseconds(1500) - milliseconds(200) - milliseconds(50));
  EXPECT_LE(took, milliseconds(2000) + milliseconds(200) + milliseconds(300));
  EXPECT_EQ(Lease().holder, "b");
  EXPECT_EQ(Lease().transitions, 1);
  b.elector->Stop();
}

TEST_F(LeaderElectionTest, AStoppedLeaderReleasesTheLeaseAtOnce) {
  auto o = Options();
  o.lease_duration = milliseconds(10000);
  o.renew_deadline = milliseconds(5000);
  Candidate a(server_.get(), "a", o), b(server_.get(), "b", o);
  a.elector->Start();
  ASSERT_TRUE(Within(milliseconds(5000), [&] { return a.acting.load(); }));
  b.elector->Start();
  a.elector->Stop();
  EXPECT_FALSE(a.acting);
  // Far sooner than the ten seconds a crash would cost: one retry period or so.
  auto took = Within(milliseconds(3000), [&] { return b.acting.load(); });
  ASSERT_TRUE(took);
  EXPECT_EQ(Lease().holder, "b");
  b.elector->Stop();
}

TEST_F(LeaderElectionTest, ALeaderThatCannotRenewStopsActingBeforeItsLeaseRunsOut) {
  Candidate a(server_.get(), "a", Options()), b(server_.get(), "b", Options());
  a.elector->Start();
  ASSERT_TRUE(Within(milliseconds(5000), [&] { return a.acting.load(); }));
  b.elector->Start();
  std::this_thread::sleep_for(milliseconds(300));  // b has seen a renew.
  auto cut = Steady::now();
  a.transport->failing = true;  // a's API is gone; b's is not.
  ASSERT_TRUE(Within(milliseconds(5000), [&] { return !a.acting; }));
  ASSERT_TRUE(Within(milliseconds(5000), [&] { return b.acting.load(); }));
  auto a_stopped = a.stopped_at.load();
  // a stepped down within the renew deadline (plus a retry) of the cut, and
  // before b could act: never two leaders at once.
  EXPECT_LE(a_stopped - cut, milliseconds(1000) + milliseconds(200) + milliseconds(100));
  EXPECT_LT(a_stopped, Steady::now());
  EXPECT_FALSE(a.acting);
  a.elector->Stop();  // Cannot release (its API fails): b keeps it.
  EXPECT_EQ(Lease().holder, "b");
  b.elector->Stop();
}

TEST_F(LeaderElectionTest, ALeaderThatFindsAnotherHolderStepsDownAtOnce) {
  Candidate a(server_.get(), "a", Options());
  a.elector->Start();
  ASSERT_TRUE(Within(milliseconds(5000), [&] { return a.acting.load(); }));
  // Another writes itself in (as an operator's `kubectl edit`, or a candidate
  // whose clock ran fast would).
  auto leases = api::FindResource("coordination.k8s.io", "v1", "leases");
  auto got = client_->Get(*leases, "kube-system", "test-controller");
  ASSERT_TRUE(got.ok());
  got->as_object()["spec"].as_object()["holderIdentity"] = "intruder";
  ASSERT_TRUE(client_->Update(*leases, "kube-system", *got).ok());
  auto took = Within(milliseconds(3000), [&] { return !a.acting; });
  ASSERT_TRUE(took);
  EXPECT_LT(*took, milliseconds(1000));  // At its next renewal, not at the deadline.
  a.elector->Stop();
  EXPECT_EQ(Lease().holder, "intruder");  // Not released: not its to release.
}

}  // namespace
}  // namespace kiso::client
