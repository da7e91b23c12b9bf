// SqliteStore: the Store on one embedded SQLite file (the default backend).
//
// Mechanism: an MVCC event log like etcd's. `history` holds one row per
// event, keyed by etcd's {main, sub} revision pair packed into one integer;
// `live` maps each live key to its latest event. Reads run on a pool of
// connections in WAL snapshots; all writes go through one committer thread
// that applies queued transactions in order inside one SQLite transaction and
// fsyncs once per batch (group commit), then publishes the events to the
// WatchHub and acknowledges. A write is acknowledged only once it is durable.
//
// CAP class "CA": one node, no partitions to tolerate; reads are linearizable
// because a read starts after every acknowledged commit it must see.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "store/sqlite_db.h"
#include "store/store.h"
#include "store/watch_hub.h"

namespace kiso::store {

class SqliteStore : public Store {
 public:
  struct Options {
    std::string path;              // The database file; its directory must exist.
    Clock* clock = Clock::Real();  // Lease expiry reads this clock.
    // Expire leases on a background thread. Tests with a FakeClock turn this
    // off and call ExpireLeases() after advancing the clock.
    bool expire_leases_in_background = true;
    // History rows a compaction step removes: one per other write in the same
    // group commit, within [min, max]. A removed row costs about one page and
    // a put two to three, so compaction adds a bounded share to each commit
    // at any load; the minimum keeps it moving when the store is idle.
    int64_t compaction_min_rows = 5;
    int64_t compaction_max_rows = 200;
    // Rows a step removes when it commits alone: no write is waiting on it.
    int64_t compaction_idle_rows = 50;
    // WAL size (pages) that wakes the checkpointer.
    int checkpoint_pages = 1000;
    // Most transactions applied in one group commit.
    size_t max_batch = 1024;
    // Whether a commit waits for the disk (PRAGMA synchronous = FULL). Only the
    // power-cut test's control run turns it off, to show that the test sees
    // the acknowledged writes a missing fsync loses; nothing else may.
    bool sync = true;
  };

  // Opens or creates the store. DataLoss naming the file when it is not a
  // SQLite database or fails its integrity check: nothing is reset.
  static Result<std::unique_ptr<SqliteStore>> Open(Options options);
  ~SqliteStore() override;

  std::string_view Backend() const override { return "sqlite"; }
  CapClass Cap() const override;
  Result<Revision> CurrentRevision() override;
  Result<RangeResult> Range(const KeyRange& range, const RangeOptions& options) override;
  Result<TxnResponse> Txn(const TxnRequest& txn) override;
  Result<std::unique_ptr<Watch>> WatchRange(const KeyRange& range, Revision after,
                                            const WatchOptions& options) override;
  Result<LeaseId> GrantLease(std::chrono::seconds ttl) override;
  Status KeepAliveLease(LeaseId lease) override;
  Status RevokeLease(LeaseId lease) override;
  Status Compact(Revision revision) override;

  // Revokes every lease whose TTL has run out on the clock. Returns how many.
  Result<int> ExpireLeases();
  // Blocks until background compaction has removed everything Compact asked for.
  void WaitForCompaction();

 private:
  // The committer's open SQLite transaction, as one queued job sees it.
  class WriteTx {
   public:
    WriteTx(SqliteDb& db, Revision committed, size_t batch_jobs)
        : db_(db), batch_jobs_(batch_jobs), job_base_(committed), rev_(committed) {}
    SqliteDb& db() { return db_; }
    // How many jobs share this group commit (this one included).
    size_t batch_jobs() const { return batch_jobs_; }
    // The history id for this job's next event; the job's first write claims
    // the next revision, and every write of the job shares it.
    int64_t NextEventId();
    // The revision after this job (its own if it wrote).
    Revision revision() const { return rev_; }
    void AddEvent(WatchEvent event) { events_.push_back(std::move(event)); }
    // Runs `fn` after the batch is durable, before callers are acknowledged.
    void OnCommit(std::function<void()> fn) { on_commit_.push_back(std::move(fn)); }

   private:
    friend class SqliteStore;
    void BeginJob();
    void AbortJob();  // Forgets the current job's revision, events and hooks.

    SqliteDb& db_;
    size_t batch_jobs_;
    Revision job_base_;
    Revision rev_;
    int64_t sub_ = 0;
    size_t job_events_ = 0;
    size_t job_hooks_ = 0;
    std::vector<WatchEvent> events_;
    std::vector<std::function<void()>> on_commit_;
  };
  struct WriteJob {
    std::function<Status(WriteTx&)> apply;
    std::promise<Status> done;
  };
  struct LeaseState {
    std::chrono::seconds ttl;
    Clock::TimePoint deadline;
  };
  class ReaderPool;

  explicit SqliteStore(Options options);
  Status Init();
  Status LoadState();

  // Queues `apply` for the committer and waits until its batch is durable.
  Status Write(std::function<Status(WriteTx&)> apply);
  void CommitterLoop();
  void RunBatch(std::vector<std::unique_ptr<WriteJob>>& batch);
  void CompactorLoop();
  void LeaseLoop();
  void CheckpointLoop();

  static Status ApplyTxn(WriteTx& tx, const TxnRequest& txn, TxnResponse* response);
  static Status ApplyPut(WriteTx& tx, const TxnOp& op, TxnOpResult* result);
  static Status ApplyDelete(WriteTx& tx, const KeyRange& range, bool want_prev,
                            TxnOpResult* result);

  Result<WatchChannel::ReplayChunk> ReadHistory(const KeyRange& range, Revision after,
                                                Revision up_to);

  Options options_;
  std::unique_ptr<SqliteDb> writer_;  // Used only by the committer thread (and Init).
  std::unique_ptr<ReaderPool> readers_;
  WatchHub hub_{0};

  std::atomic<Revision> revision_{0};          // Last committed revision.
  std::atomic<Revision> compact_revision_{0};  // Reads below answer Compacted.

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::unique_ptr<WriteJob>> queue_;
  // Set (under queue_mu_, so no job is queued after the committer's last look)
  // when the store closes; the other loops read it without that lock.
  std::atomic<bool> stopping_{false};

  std::mutex compact_mu_;
  std::condition_variable compact_cv_;
  int64_t compaction_cursor_ = 0;  // The current pass has compacted history ids up to here.

  std::mutex lease_mu_;
  std::condition_variable lease_cv_;
  std::map<LeaseId, LeaseState> leases_;

  // Checkpoints run on their own thread and connection, never inside a commit.
  std::function<void(int)> wal_hook_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  std::thread checkpointer_;

  std::thread committer_;
  std::thread compactor_;
  std::thread lease_expirer_;
};

}  // namespace kiso::store
