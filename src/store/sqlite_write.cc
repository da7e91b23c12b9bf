// SqliteStore's write path: the group-committing committer thread and the
// transactions it applies (Txn, lease revocation).
#include <spdlog/spdlog.h>

#include "store/sqlite_rows.h"
#include "store/sqlite_store.h"

namespace kiso::store {

using sqlite::EventId;
using sqlite::LiveKv;

int64_t SqliteStore::WriteTx::NextEventId() {
  if (rev_ == job_base_) {
    rev_ = job_base_ + 1;
    sub_ = 0;
  }
  return EventId(rev_, sub_++);
}

void SqliteStore::WriteTx::BeginJob() {
  job_base_ = rev_;
  job_events_ = events_.size();
  job_hooks_ = on_commit_.size();
}

void SqliteStore::WriteTx::AbortJob() {
  rev_ = job_base_;
  events_.resize(job_events_);
  on_commit_.resize(job_hooks_);
}

Status SqliteStore::Write(std::function<Status(WriteTx&)> apply) {
  auto job = std::make_unique<WriteJob>();
  job->apply = std::move(apply);
  std::future<Status> done = job->done.get_future();
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_) return Status(Code::kCancelled, "store is closing");
    queue_.push_back(std::move(job));
  }
  queue_cv_.notify_one();
  return done.get();
}

void SqliteStore::CommitterLoop() {
  std::vector<std::unique_ptr<WriteJob>> batch;
  while (true) {
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // Stopping, and every queued job is done.
      // Everything that queued up while the last batch was being fsync'd
      // commits together: group commit.
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(batch);
    batch.clear();
  }
}

void SqliteStore::RunBatch(std::vector<std::unique_ptr<WriteJob>>& batch) {
  SqliteDb& db = *writer_;
  auto fail_all = [&](const Status& why) {
    for (auto& job : batch) job->done.set_value(why);
  };
  if (Status s = db.Run("BEGIN IMMEDIATE"); !s.ok()) return fail_all(s);
  WriteTx tx(db, revision_.load(), batch.size());
  std::vector<Status> results;
  results.reserve(batch.size());
  for (auto& job : batch) {
    // A savepoint per job: a job that fails leaves no trace, and the rest of
    // the batch still commits.
    tx.BeginJob();
    Status s = db.Run("SAVEPOINT job");
    if (s.ok()) s = job->apply(tx);
    if (s.ok()) {
      s = db.Run("RELEASE job");
    } else {
      tx.AbortJob();
      (void)db.Exec("ROLLBACK TO job; RELEASE job");
    }
    results.push_back(std::move(s));
  }
  Status commit = Status::Ok();
  if (tx.revision() != revision_.load()) {
    auto q = db.Query("UPDATE meta SET value = ?1 WHERE name = 'revision'");
    commit = q.ok() ? q->Bind(1, tx.revision()).Run() : q.status();
  }
  if (commit.ok()) commit = db.Run("COMMIT");
  if (!commit.ok()) {
    (void)db.Exec("ROLLBACK");
    spdlog::error("commit of {} writes failed: {}", batch.size(), commit.ToString());
    return fail_all(commit.Annotate("write not committed"));
  }
  // Durable: make it visible, then acknowledge.
  revision_ = tx.revision();
  for (auto& fn : tx.on_commit_) fn();
  hub_.Publish(tx.revision(), tx.events_);
  for (size_t i = 0; i < batch.size(); ++i) batch[i]->done.set_value(std::move(results[i]));
}

namespace {

// Evaluates one compare against the key's live state (etcd's applyCompare).
Result<bool> Holds(SqliteDb& db, const Compare& c) {
  KISO_ASSIGN_OR_RETURN(std::optional<LiveKv> live, sqlite::ReadLive(db, c.key));
  KeyValue kv = live ? live->kv : KeyValue{};
  if (c.target == Compare::Target::kValue) {
    if (!live) return false;  // etcd: a value compare on a missing key always fails.
    int cmp = kv.value.compare(c.value);
    switch (c.op) {
      case Compare::Op::kEqual:
        return cmp == 0;
      case Compare::Op::kNotEqual:
        return cmp != 0;
      case Compare::Op::kGreater:
        return cmp > 0;
      case Compare::Op::kLess:
        return cmp < 0;
    }
  }
  int64_t actual = 0;
  switch (c.target) {
    case Compare::Target::kVersion:
      actual = kv.version;
      break;
    case Compare::Target::kCreateRevision:
      actual = kv.create_revision;
      break;
    case Compare::Target::kModRevision:
      actual = kv.mod_revision;
      break;
    case Compare::Target::kLease:
      actual = kv.lease;
      break;
    case Compare::Target::kValue:
      break;
  }
  switch (c.op) {
    case Compare::Op::kEqual:
      return actual == c.number;
    case Compare::Op::kNotEqual:
      return actual != c.number;
    case Compare::Op::kGreater:
      return actual > c.number;
    case Compare::Op::kLess:
      return actual < c.number;
  }
  return false;
}

// Writes one history event; `prev_id` (if not 0) is the live event it replaces.
Status InsertEvent(SqliteDb& db, int64_t id, const KeyValue& kv, int64_t prev_id) {
  if (prev_id != 0) {
    KISO_ASSIGN_OR_RETURN(SqliteQuery q,
                          db.Query("INSERT INTO superseded(id, by) VALUES (?1, ?2)"));
    KISO_RETURN_IF_ERROR(q.Bind(1, prev_id).Bind(2, id).Run());
  }
  KISO_ASSIGN_OR_RETURN(
      SqliteQuery q,
      db.Query("INSERT INTO history(id, key, value, create_rev, version, lease, prev_id) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  return q.Bind(1, id)
      .Bind(2, kv.key)
      .Bind(3, kv.value)
      .Bind(4, kv.create_revision)
      .Bind(5, kv.version)
      .Bind(6, kv.lease)
      .Bind(7, prev_id)
      .Run();
}

}  // namespace

Status SqliteStore::ApplyPut(WriteTx& tx, const TxnOp& op, TxnOpResult* result) {
  SqliteDb& db = tx.db();
  if (op.lease != 0) {
    KISO_ASSIGN_OR_RETURN(SqliteQuery q, db.Query("SELECT 1 FROM lease WHERE id = ?1"));
    KISO_ASSIGN_OR_RETURN(bool exists, q.Bind(1, op.lease).Step());
    if (!exists) return MakeStatus(Code::kNotFound, "lease {:x} not found", op.lease);
  }
  const std::string& key = op.range.key;
  KISO_ASSIGN_OR_RETURN(std::optional<LiveKv> prev, sqlite::ReadLive(db, key));
  int64_t id = tx.NextEventId();
  KeyValue kv{key, op.value, tx.revision(), tx.revision(), 1, op.lease};
  if (prev) {
    kv.create_revision = prev->kv.create_revision;
    kv.version = prev->kv.version + 1;
  }
  KISO_RETURN_IF_ERROR(InsertEvent(db, id, kv, prev ? prev->id : 0));
  KISO_ASSIGN_OR_RETURN(
      SqliteQuery live,
      db.Query("INSERT INTO live(key, id, lease) VALUES (?1, ?2, ?3) "
               "ON CONFLICT(key) DO UPDATE SET id = excluded.id, lease = excluded.lease"));
  KISO_RETURN_IF_ERROR(live.Bind(1, key).Bind(2, id).Bind(3, op.lease).Run());
  std::optional<KeyValue> prev_kv;
  if (prev) prev_kv = prev->kv;
  if (prev_kv && op.prev_kv) result->kvs.push_back(*prev_kv);
  tx.AddEvent({WatchEvent::Type::kPut, std::move(kv), std::move(prev_kv)});
  return Status::Ok();
}

Status SqliteStore::ApplyDelete(WriteTx& tx, const KeyRange& range, bool want_prev,
                                TxnOpResult* result) {
  SqliteDb& db = tx.db();
  KISO_ASSIGN_OR_RETURN(std::vector<LiveKv> doomed, sqlite::ReadLiveRange(db, range));
  for (LiveKv& live : doomed) {
    KeyValue& prev = live.kv;
    int64_t prev_id = live.id;
    int64_t id = tx.NextEventId();
    KeyValue tombstone{.key = prev.key, .mod_revision = tx.revision()};
    KISO_RETURN_IF_ERROR(InsertEvent(db, id, tombstone, prev_id));
    KISO_ASSIGN_OR_RETURN(SqliteQuery del, db.Query("DELETE FROM live WHERE key = ?1"));
    KISO_RETURN_IF_ERROR(del.Bind(1, prev.key).Run());
    ++result->deleted;
    if (want_prev) result->kvs.push_back(prev);
    tx.AddEvent({WatchEvent::Type::kDelete, std::move(tombstone), std::move(prev)});
  }
  return Status::Ok();
}

Status SqliteStore::ApplyTxn(WriteTx& tx, const TxnRequest& txn, TxnResponse* response) {
  response->succeeded = true;
  for (const Compare& c : txn.compares) {
    KISO_ASSIGN_OR_RETURN(bool holds, Holds(tx.db(), c));
    if (!holds) {
      response->succeeded = false;
      break;
    }
  }
  const std::vector<TxnOp>& ops = response->succeeded ? txn.success : txn.failure;
  response->results.resize(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const TxnOp& op = ops[i];
    TxnOpResult* result = &response->results[i];
    switch (op.type) {
      case TxnOp::Type::kPut:
        KISO_RETURN_IF_ERROR(ApplyPut(tx, op, result));
        break;
      case TxnOp::Type::kDelete:
        KISO_RETURN_IF_ERROR(ApplyDelete(tx, op.range, op.prev_kv, result));
        break;
      case TxnOp::Type::kRange: {
        KISO_ASSIGN_OR_RETURN(RangeResult r, sqlite::ReadRange(tx.db(), op.range, op.options));
        result->kvs = std::move(r.kvs);
        result->count = r.count;
        result->more = r.more;
        break;
      }
    }
  }
  response->revision = tx.revision();
  return Status::Ok();
}

Result<TxnResponse> SqliteStore::Txn(const TxnRequest& txn) {
  KISO_RETURN_IF_ERROR(ValidateTxn(txn));
  TxnResponse response;
  KISO_RETURN_IF_ERROR(Write([&](WriteTx& tx) {
    response = TxnResponse{};
    return ApplyTxn(tx, txn, &response);
  }));
  return response;
}

Status SqliteStore::RevokeLease(LeaseId lease) {
  return Write([&](WriteTx& tx) -> Status {
    SqliteDb& db = tx.db();
    KISO_ASSIGN_OR_RETURN(SqliteQuery q, db.Query("DELETE FROM lease WHERE id = ?1"));
    KISO_RETURN_IF_ERROR(q.Bind(1, lease).Run());
    if (db.Changes() == 0) return MakeStatus(Code::kNotFound, "lease {:x} not found", lease);
    // Every attached key goes in one revision, as etcd's lease revocation does.
    std::vector<std::string> keys;
    {
      KISO_ASSIGN_OR_RETURN(SqliteQuery attached,
                            db.Query("SELECT key FROM live WHERE lease = ?1 ORDER BY key"));
      attached.Bind(1, lease);
      while (true) {
        KISO_ASSIGN_OR_RETURN(bool row, attached.Step());
        if (!row) break;
        keys.push_back(attached.Blob(0));
      }
    }
    TxnOpResult ignored;
    for (const std::string& key : keys) {
      KISO_RETURN_IF_ERROR(ApplyDelete(tx, KeyRange::Single(key), false, &ignored));
    }
    tx.OnCommit([this, lease] {
      std::lock_guard lock(lease_mu_);
      leases_.erase(lease);
    });
    return Status::Ok();
  });
}

}  // namespace kiso::store
