// Store: the seed's St = {key-value, watch, transaction, lease} (07.2.3).
//
// A Store is a revisioned, ordered map from byte-string keys to byte-string
// values with etcd v3 semantics: every successful write transaction advances
// one global revision; each live key carries create_revision, mod_revision
// and version; history below the compaction point is discarded; watches
// replay history and then stream live events; leases delete their keys on
// expiry. Implementations (sqlite_store.h, etcd_store.h) are interchangeable:
// store_conformance_test.cc runs the same assertions against each.
//
// All methods are thread-safe. No method throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiso::store {

using Revision = int64_t;
using LeaseId = int64_t;

// etcd's request limit: a value (or a whole request) larger than this is refused.
inline constexpr size_t kMaxValueBytes = size_t{1536} * 1024;
// etcd's default --max-txn-ops.
inline constexpr size_t kMaxTxnOps = 128;

struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;  // Revision of the put that created this generation.
  Revision mod_revision = 0;     // Revision of the last write to the key.
  int64_t version = 0;           // Puts since creation: 1 for a new key. 0 in delete events.
  LeaseId lease = 0;             // 0 when no lease is attached.
  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

// A key selection in etcd's form: `end` empty selects `key` alone; otherwise
// the half-open byte range [key, end); end == kRangeToEnd selects every key >= key.
struct KeyRange {
  static inline const std::string kRangeToEnd = std::string(1, '\0');

  std::string key;
  std::string end;

  static KeyRange Single(std::string key) { return {std::move(key), ""}; }
  // Every key that starts with `prefix`.
  static KeyRange Prefix(std::string prefix);
  static KeyRange Between(std::string start, std::string end) {
    return {std::move(start), std::move(end)};
  }
  bool IsSingle() const { return end.empty(); }
  bool Contains(std::string_view k) const;
};

// The smallest key greater than every key that starts with `prefix`
// (etcd's GetPrefixRangeEnd); kRangeToEnd when no such key exists.
std::string PrefixEnd(std::string_view prefix);

struct RangeOptions {
  Revision revision = 0;    // 0: the current revision. Older: a snapshot (Compacted if discarded).
  int64_t limit = 0;        // 0: no limit.
  bool count_only = false;  // Return only `count`.
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // Ascending by key.
  int64_t count = 0;          // Keys in the range at that revision, ignoring limit.
  bool more = false;          // True when limit cut the result short.
  Revision revision = 0;      // The store revision the result was read at.
};

// A condition on one key's current state, evaluated inside a transaction.
// A missing key has version, create_revision, mod_revision and lease 0 and no value.
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue, kLease };
  enum class Op { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kModRevision;
  Op op = Op::kEqual;
  int64_t number = 0;  // For every target but kValue.
  std::string value;   // For kValue.

  static Compare ModRevisionIs(std::string key, Revision rev) {
    return {std::move(key), Target::kModRevision, Op::kEqual, rev, {}};
  }
  static Compare Missing(std::string key) {  // The key has no live value.
    return {std::move(key), Target::kCreateRevision, Op::kEqual, 0, {}};
  }
  static Compare ValueIs(std::string key, std::string value) {
    return {std::move(key), Target::kValue, Op::kEqual, 0, std::move(value)};
  }
};

struct TxnOp {
  enum class Type { kPut, kDelete, kRange };
  Type type = Type::kRange;
  KeyRange range;        // kPut: a single key.
  std::string value;     // kPut.
  LeaseId lease = 0;     // kPut: attach to this lease (it must exist); 0 detaches.
  bool prev_kv = false;  // kPut/kDelete: return the value(s) it replaced.
  RangeOptions options;  // kRange. `revision` must be 0 inside a transaction.

  static TxnOp Put(std::string key, std::string value, LeaseId lease = 0) {
    return {Type::kPut, KeyRange::Single(std::move(key)), std::move(value), lease, true, {}};
  }
  static TxnOp Delete(KeyRange range) { return {Type::kDelete, std::move(range), {}, 0, true, {}}; }
  static TxnOp Get(std::string key) {
    return {Type::kRange, KeyRange::Single(std::move(key)), {}, 0, false, {}};
  }
};

struct TxnOpResult {
  // kRange: the values read. kPut/kDelete with prev_kv: the values replaced.
  std::vector<KeyValue> kvs;
  int64_t deleted = 0;  // kDelete: keys deleted.
  int64_t count = 0;    // kRange: as RangeResult::count.
  bool more = false;    // kRange: as RangeResult::more.
};

// If every compare holds, `success` runs, else `failure`; atomically, and all
// writes of one transaction share one new revision (etcd's main revision).
struct TxnRequest {
  std::vector<Compare> compares;
  std::vector<TxnOp> success;
  std::vector<TxnOp> failure;
};

struct TxnResponse {
  bool succeeded = false;
  Revision revision = 0;             // The store revision after the transaction.
  std::vector<TxnOpResult> results;  // One per op of the branch taken.
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // kPut: the new value. kDelete: key and mod_revision (the deletion's revision) only.
  KeyValue kv;
  std::optional<KeyValue> prev_kv;  // Set when asked for and the key had a value.
  friend bool operator==(const WatchEvent&, const WatchEvent&) = default;
};

struct WatchOptions {
  bool prev_kv = false;
  // Events held for a consumer that has not called Next yet. When exceeded the
  // watch ends with ResourceExhausted: its client must re-list and watch again.
  size_t buffer_events = 10000;
};

// One watch stream. Owned by the caller; destroying it cancels the watch.
class Watch {
 public:
  virtual ~Watch() = default;
  // Waits until events are ready, the watch ends, or `deadline` passes.
  // Returns the ready events in revision order (empty at the deadline). Once
  // the watch has ended, returns why: Compacted (start revision discarded),
  // ResourceExhausted (consumer too slow), Unavailable (backend gone),
  // Cancelled (Cancel or store shutdown). Call from one thread at a time.
  virtual Result<std::vector<WatchEvent>> Next(std::chrono::steady_clock::time_point deadline) = 0;
  // Ends the watch; a blocked Next returns Cancelled. Thread-safe.
  virtual void Cancel() = 0;
};

// The consistency class a backend offers, in the seed's CAP table (07.4).
struct CapClass {
  std::string_view name;  // "CA" (single node) or "CP" (replicated, quorum).
  std::string_view description;
};

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite", "etcd".
  virtual std::string_view Backend() const = 0;
  virtual CapClass Cap() const = 0;

  // The latest committed revision (linearizable: includes every write acknowledged before the
  // call).
  virtual Result<Revision> CurrentRevision() = 0;

  // Reads `range` at options.revision (0 = now). InvalidArgument for a bad
  // range or a future revision; Compacted for a discarded revision.
  // Linearizable when options.revision is 0.
  virtual Result<RangeResult> Range(const KeyRange& range, const RangeOptions& options) = 0;

  // Runs `txn` atomically (see TxnRequest). InvalidArgument for empty keys,
  // oversized values, bad ranges or too many ops, before anything is written;
  // NotFound when a put names a lease that does not exist. Returns only after
  // the write is durable (fsync'd locally, or committed by a quorum).
  virtual Result<TxnResponse> Txn(const TxnRequest& txn) = 0;

  // Streams every event on keys in `range` with revision > `after`: first the
  // stored history, then live events, in revision order without gaps.
  // Compacted (here, or from the first Next) when events after `after` were discarded.
  virtual Result<std::unique_ptr<Watch>> WatchRange(const KeyRange& range, Revision after,
                                                    const WatchOptions& options) = 0;

  // Creates a lease that expires `ttl` after its last keep-alive (a backend
  // may round the TTL up to its minimum). Survives a restart of the store.
  virtual Result<LeaseId> GrantLease(std::chrono::seconds ttl) = 0;
  // Restarts the lease's TTL. NotFound when it has expired or was revoked.
  virtual Status KeepAliveLease(LeaseId lease) = 0;
  // Deletes the lease and, in one revision, every key attached to it. NotFound if unknown.
  virtual Status RevokeLease(LeaseId lease) = 0;

  // Discards history at and below `revision` except each key's latest value
  // (etcd's compaction). Returns once reads below `revision` answer Compacted;
  // rows are removed in the background in small batches that never stall
  // writers. InvalidArgument for a future revision; Compacted if already compacted past it.
  virtual Status Compact(Revision revision) = 0;

  // ---- Conveniences built on Range and Txn (identical for every backend). ----

  // The key's value at `revision` (0 = now); NotFound if it has none.
  Result<KeyValue> Get(std::string_view key, Revision revision = 0);
  // Puts unconditionally; returns the stored value with its revisions.
  Result<KeyValue> Put(std::string_view key, std::string_view value, LeaseId lease = 0);
  // Puts only if the key has no live value; AlreadyExists otherwise.
  Result<KeyValue> Create(std::string_view key, std::string_view value, LeaseId lease = 0);
  // Puts only if the key's mod_revision is `expected`. NotFound if the key is
  // absent; Conflict otherwise, and then `*current` (if given) receives its current value.
  Result<KeyValue> Update(std::string_view key, std::string_view value, Revision expected,
                          LeaseId lease = 0, KeyValue* current = nullptr);
  // Deletes the key, only if its mod_revision is `expected` when expected != 0.
  // Returns the deleted value; NotFound if absent; Conflict (with *current) on mismatch.
  struct Deleted {
    KeyValue prev;
    Revision revision = 0;  // The revision of the deletion.
  };
  Result<Deleted> Delete(std::string_view key, Revision expected = 0, KeyValue* current = nullptr);
};

// Validates a request before a backend touches it; shared by every backend so
// they refuse the same inputs with the same messages.
Status ValidateRange(const KeyRange& range);
Status ValidateTxn(const TxnRequest& txn);

// Opens the store named by `url`:
//   sqlite:///abs/path/kiso.db   embedded SQLite (the default)
//   etcd://host:port[,host:port] an etcd v3 cluster over gRPC
// InvalidArgument for an unknown scheme; the backend's error when opening fails.
Result<std::unique_ptr<Store>> OpenStore(std::string_view url);

}  // namespace kiso::store
