// A linearizability checker: Wing & Gong's search with Lowe's just-in-time
// linearization and a cache of (linearized set, state) pairs already explored
// — the algorithm porcupine uses, written here from the papers.
//
// A history is a set of operations, each with a call and a return time. It is
// linearizable if some total order of the operations respects real time (an
// operation that returned before another was called comes first) and, applied
// one by one to the sequential model, yields exactly the recorded outputs.
//
// A Model provides:
//   using State, Input, Output;       State must be equality-comparable
//   static State Init();
//   static bool Step(const State&, const Input&, const Output&, State* next);
//   static size_t Hash(const State&);
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

namespace kiso::linearizability {

// A time that never comes: the return of an operation whose outcome is unknown
// (a client crashed or timed out). Such an operation may take effect at any
// point after its call — including never.
inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

template <typename Model>
struct Operation {
  int client = 0;
  typename Model::Input input;
  typename Model::Output output;
  int64_t call = 0;
  int64_t ret = 0;
};

enum class Verdict { kLinearizable, kNotLinearizable, kTimedOut };

// Checks one history (one partition). Gives up after `budget`, or as soon as
// `*stop` becomes true (then the verdict is kTimedOut).
template <typename Model>
Verdict Check(const std::vector<Operation<Model>>& ops,
              std::chrono::steady_clock::duration budget = std::chrono::seconds(60),
              const std::atomic<bool>* stop = nullptr) {
  using State = typename Model::State;
  const int n = static_cast<int>(ops.size());
  if (n == 0) return Verdict::kLinearizable;

  // Entries: a call and a return per op, in time order; at equal times calls
  // come first, so touching operations count as concurrent.
  struct Entry {
    bool call;
    int op;
    int64_t time;
    int prev = -1, next = -1, match = -1;
  };
  std::vector<Entry> e;
  e.reserve(2 * n + 1);
  e.push_back({true, -1, std::numeric_limits<int64_t>::min()});  // Head sentinel at index 0.
  for (int i = 0; i < n; ++i) {
    e.push_back({true, i, ops[i].call});
    e.push_back({false, i, ops[i].ret});
  }
  std::stable_sort(e.begin() + 1, e.end(), [](const Entry& a, const Entry& b) {
    if (a.time != b.time) return a.time < b.time;
    return a.call && !b.call;
  });
  std::vector<int> call_of(n), return_of(n);
  for (int i = 1; i < static_cast<int>(e.size()); ++i)
    (e[i].call ? call_of : return_of)[e[i].op] = i;
  for (int i = 0; i < static_cast<int>(e.size()); ++i) {
    e[i].prev = i - 1;
    e[i].next = i + 1 < static_cast<int>(e.size()) ? i + 1 : -1;
  }
  for (int op = 0; op < n; ++op) e[call_of[op]].match = return_of[op];

  auto lift = [&](int c) {
    Entry& call = e[c];
    e[call.prev].next = call.next;
    if (call.next >= 0) e[call.next].prev = call.prev;
    Entry& ret = e[call.match];
    e[ret.prev].next = ret.next;
    if (ret.next >= 0) e[ret.next].prev = ret.prev;
  };
  auto unlift = [&](int c) {
    Entry& call = e[c];
    Entry& ret = e[call.match];
    e[ret.prev].next = call.match;
    if (ret.next >= 0) e[ret.next].prev = call.match;
    e[call.prev].next = c;
    if (call.next >= 0) e[call.next].prev = c;
  };

  // The set of linearized ops as a bitset, hashed together with the state.
  std::vector<uint64_t> linearized((n + 63) / 64, 0);
  auto hash_of = [&](const std::vector<uint64_t>& bits, const State& s) {
    size_t h = Model::Hash(s);
    for (uint64_t w : bits) h = h * 1000003u ^ std::hash<uint64_t>{}(w);
    return h;
  };
  struct Seen {
    size_t hash;
    std::vector<uint64_t> bits;
    State state;
    bool operator==(const Seen& o) const {
      return hash == o.hash && bits == o.bits && state == o.state;
    }
  };
  struct SeenHash {
    size_t operator()(const Seen& s) const { return s.hash; }
  };
  std::unordered_set<Seen, SeenHash> cache;

  struct Frame {
    int entry;
    State state;
  };
  std::vector<Frame> stack;
  State state = Model::Init();
  int entry = e[0].next;
  auto deadline = std::chrono::steady_clock::now() + budget;
  int64_t steps = 0;
  while (e[0].next >= 0) {
    if ((++steps & 0xfff) == 0 && (std::chrono::steady_clock::now() > deadline ||
                                   (stop != nullptr && stop->load(std::memory_order_relaxed)))) {
      return Verdict::kTimedOut;
    }
    const Entry& cur = e[entry];
    if (cur.call) {
      const Operation<Model>& op = ops[cur.op];
      State next{};
      if (Model::Step(state, op.input, op.output, &next)) {
        linearized[cur.op / 64] |= uint64_t{1} << (cur.op % 64);
        if (cache.insert(Seen{hash_of(linearized, next), linearized, next}).second) {
          stack.push_back({entry, state});
          state = std::move(next);
          lift(entry);
          entry = e[0].next;
          continue;
        }
        linearized[cur.op / 64] &= ~(uint64_t{1} << (cur.op % 64));
      }
      entry = cur.next;
    } else {
      // An op's return with no linearization for it yet: backtrack.
      if (stack.empty()) return Verdict::kNotLinearizable;
      Frame top = std::move(stack.back());
      stack.pop_back();
      state = std::move(top.state);
      linearized[e[top.entry].op / 64] &= ~(uint64_t{1} << (e[top.entry].op % 64));
      unlift(top.entry);
      entry = e[top.entry].next;
    }
  }
  return Verdict::kLinearizable;
}

// Checks a history partitioned into independent parts (e.g. one per key: a
// KV history is linearizable iff each key's history is). Parts are checked
// concurrently and the first refuted part stops the others, as one refutation
// decides the whole history.
template <typename Model>
Verdict CheckPartitioned(const std::vector<std::vector<Operation<Model>>>& parts,
                         std::chrono::steady_clock::duration budget = std::chrono::seconds(60)) {
  std::atomic<bool> refuted{false};
  std::atomic<bool> timed_out{false};
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < parts.size() && !refuted; i = next++) {
      Verdict v = Check<Model>(parts[i], budget, &refuted);
      if (v == Verdict::kNotLinearizable) refuted = true;
      if (v == Verdict::kTimedOut && !refuted) timed_out = true;
    }
  };
  unsigned n = std::max(2u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (refuted) return Verdict::kNotLinearizable;
  return timed_out ? Verdict::kTimedOut : Verdict::kLinearizable;
}

}  // namespace kiso::linearizability
