// The store is linearizable: 8 concurrent clients do put, get, compare-and-
// swap and delete on 3 keys; the recorded history is checked against the
// sequential model by the checker that tests/linearizability proves on
// histories with known verdicts. Runs on every backend.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

#include "linearizability/checker.h"
#include "linearizability/models.h"
#include "support/store_fixture.h"

namespace kiso::store {
namespace {

namespace lin = kiso::linearizability;
using Model = lin::StoreKvModel;
using Op = lin::Operation<Model>;

int64_t Nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class StoreLinearizabilityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StoreLinearizabilityTest, ConcurrentHistoryIsLinearizable) {
  auto fixture = testing::StoreFixture::Open(GetParam());
  ASSERT_TRUE(fixture.ok()) << fixture.status().ToString();
  Store& store = (*fixture)->store();
  constexpr int kClients = 8, kOpsPerClient = 150, kKeys = 3;
  std::vector<std::map<int, std::vector<Op>>> per_client(kClients);
  std::vector<std::thread> clients;
  clients.reserve(kClients);
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(c * 7919 + 1);
      for (int i = 0; i < kOpsPerClient; ++i) {
        int k = static_cast<int>(rng() % kKeys);
        std::string key = (*fixture)->Key("k" + std::to_string(k));
        std::string value = std::to_string(c) + "." + std::to_string(i);
        Op op;
        op.client = c;
        int dice = static_cast<int>(rng() % 10);
        op.call = Nanos();
        if (dice < 3) {
          op.input.kind = Model::Kind::kPut;
          op.input.value = value;
          auto r = store.Put(key, value);
          op.output.unknown = !r.ok();
        } else if (dice < 6) {
          op.input.kind = Model::Kind::kGet;
          auto r = store.Get(key);
          if (r.ok()) {
            op.output.value = r->value;
          } else {
            op.output.unknown = r.status().code() != Code::kNotFound;
          }
        } else if (dice < 9) {
          // Compare-and-swap on the value: expect what some client may have written.
          op.input.kind = Model::Kind::kCas;
          op.input.value = value;
          op.input.expected = std::to_string(rng() % kClients) + "." + std::to_string(i - 1);
          TxnRequest txn;
          txn.compares.push_back(Compare::ValueIs(key, op.input.expected));
          txn.success.push_back(TxnOp::Put(key, value));
          auto r = store.Txn(txn);
          op.output.unknown = !r.ok();
          op.output.ok = r.ok() && r->succeeded;
        } else {
          op.input.kind = Model::Kind::kDelete;
          auto r = store.Delete(key);
          op.output.ok = r.ok();
          op.output.unknown = !r.ok() && r.status().code() != Code::kNotFound;
        }
        op.ret = op.output.unknown ? lin::kNever : Nanos();
        per_client[c][k].push_back(op);
      }
    });
  }
  for (auto& t : clients) t.join();
  std::vector<std::vector<Op>> parts(kKeys);
  size_t total = 0, unknown = 0;
  for (auto& by_key : per_client) {
    for (auto& [k, ops] : by_key) {
      for (auto& op : ops) {
        unknown += op.output.unknown;
        parts[k].push_back(op);
        ++total;
      }
    }
  }
  EXPECT_EQ(total, size_t{kClients} * kOpsPerClient);
  EXPECT_EQ(unknown, 0u) << "operations failed during the run";
  EXPECT_EQ(lin::CheckPartitioned<Model>(parts), lin::Verdict::kLinearizable);

  // The same history with one read made stale must be refused: the check can fail.
  for (auto& part : parts) {
    for (size_t i = 0; i < part.size(); ++i) {
      const Op& read = part[i];
      if (read.input.kind != Model::Kind::kGet || !read.output.value) continue;
      // A read that returned after a later, completed put of a fresh value...
      for (const Op& put : part) {
        if (put.input.kind == Model::Kind::kPut && put.ret < read.call &&
            put.input.value != *read.output.value) {
          std::vector<Op> tampered = part;
          Op stale = read;
          stale.output.value = "never-written";
          tampered[i] = stale;
          EXPECT_EQ(lin::Check<Model>(tampered), lin::Verdict::kNotLinearizable);
          return;
        }
      }
    }
  }
  ADD_FAILURE() << "no read suitable for tampering";
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreLinearizabilityTest, ::testing::Values("sqlite", "etcd"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiso::store
