// SqliteStore: opening, reads, watches, leases and compaction requests.
// The write path (committer, transactions) is in sqlite_write.cc.
#include "store/sqlite_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "store/sqlite_rows.h"

namespace kiso::store {

using sqlite::LastIdOf;

// Read connections, created on demand and reused; WAL lets them read while
// the committer writes.
class SqliteStore::ReaderPool {
 public:
  explicit ReaderPool(std::string path) : path_(std::move(path)) {}

  // Runs `fn` on a connection inside a read transaction (one WAL snapshot).
  template <typename Fn>
  auto Read(Fn&& fn) -> decltype(fn(std::declval<SqliteDb&>())) {
    std::unique_ptr<SqliteDb> db;
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        db = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (db == nullptr) {
      auto opened = SqliteDb::Open(path_);
      if (!opened.ok()) return opened.status();
      db = std::move(opened).value();
      KISO_RETURN_IF_ERROR(db->Exec("PRAGMA query_only = 1; PRAGMA busy_timeout = 5000;"));
    }
    KISO_RETURN_IF_ERROR(db->Run("BEGIN"));
    auto result = fn(*db);
    Status end = db->Run("COMMIT");
    if (!end.ok()) {
      (void)db->Exec("ROLLBACK");
      if (result.ok()) return end;
    }
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(db));
    return result;
  }

 private:
  std::string path_;
  std::mutex mu_;
  std::vector<std::unique_ptr<SqliteDb>> idle_;
};

namespace {

constexpr std::string_view kSqliteMagic("SQLite format 3\0", 16);

// Refuses a file that exists but is not a SQLite database, before SQLite gets
// a chance to treat it as empty.
Status CheckHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Ok();  // Does not exist yet: it will be created.
  std::string header(kSqliteMagic.size(), '\0');
  in.read(header.data(), static_cast<std::streamsize>(header.size()));
  if (in.gcount() == 0) return Status::Ok();  // Empty file: SQLite initialises it.
  if (header != kSqliteMagic) {
    return MakeStatus(Code::kDataLoss,
                      "{} is not a SQLite database (bad header); refusing to start rather than "
                      "overwrite it: restore it from a backup or move it away",
                      path);
  }
  return Status::Ok();
}

}  // namespace

SqliteStore::SqliteStore(Options options) : options_(std::move(options)) {}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(Options options) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(options)));
  KISO_RETURN_IF_ERROR(store->Init());
  return store;
}

Status SqliteStore::Init() {
  const std::string& path = options_.path;
  KISO_RETURN_IF_ERROR(CheckHeader(path));
  KISO_ASSIGN_OR_RETURN(writer_, SqliteDb::Open(path));
  // synchronous=FULL in WAL mode: every COMMIT fsyncs the WAL before returning.
  // Checkpoints are taken by CheckpointLoop, not by the committing thread.
  // secure_delete=FAST: deleted content is zeroed in the pages a commit writes
  // anyway, but a page compaction empties is not written again just to zero it
  // (Debian builds SQLite with secure_delete on, which writes each such page).
  Status pragmas = writer_->Exec(
      fmt::format("PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000; "
                  "PRAGMA wal_autocheckpoint = 0; PRAGMA secure_delete = FAST;",
                  options_.sync ? "FULL" : "OFF"));
  if (!pragmas.ok()) return pragmas.Annotate("refusing to start");
  {
    KISO_ASSIGN_OR_RETURN(SqliteQuery check, writer_->Query("PRAGMA quick_check"));
    Result<bool> row = check.Step();
    if (!row.ok()) return row.status().Annotate("refusing to start");
    std::string verdict = *row ? check.Blob(0) : "no result";
    if (verdict != "ok") {
      return MakeStatus(Code::kDataLoss,
                        "{} failed its integrity check ({}); refusing to start rather than lose "
                        "data: restore it from a backup or move it away",
                        path, verdict);
    }
  }
  Status schema = writer_->Exec(sqlite::kSchema);
  if (!schema.ok()) return schema.Annotate("refusing to start");
  KISO_ASSIGN_OR_RETURN(int64_t version, sqlite::ReadMeta(*writer_, "schema"));
  if (version == 1) {
    if (Status s = writer_->Exec(sqlite::kMigrateFrom1); !s.ok()) {
      (void)writer_->Exec("ROLLBACK");
      return s.Annotate(fmt::format("upgrading {} to schema 2; refusing to start", path));
    }
    spdlog::info("{}: upgraded the store's schema from 1 to 2", path);
  } else if (version != sqlite::kSchemaVersion) {
    return MakeStatus(Code::kInvalidArgument,
                      "{} has store schema {} and this kiso knows only {}; refusing to start "
                      "rather than misread it: run the kiso that wrote it",
                      path, version, sqlite::kSchemaVersion);
  }
  KISO_RETURN_IF_ERROR(LoadState());
  readers_ = std::make_unique<ReaderPool>(path);
  // Wakes the checkpointer once per `checkpoint_pages` of WAL growth; the WAL
  // shrinks back (restarts) after a checkpoint has caught up.
  wal_hook_ = [this, next = options_.checkpoint_pages](int pages) mutable {
    if (pages < options_.checkpoint_pages) next = options_.checkpoint_pages;
    if (pages < next) return;
    next = pages + options_.checkpoint_pages;
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_wanted_ = true;
    }
    checkpoint_cv_.notify_one();
  };
  writer_->SetWalHook(&wal_hook_);
  checkpointer_ = std::thread([this] { CheckpointLoop(); });
  committer_ = std::thread([this] { CommitterLoop(); });
  compactor_ = std::thread([this] { CompactorLoop(); });
  if (options_.expire_leases_in_background) lease_expirer_ = std::thread([this] { LeaseLoop(); });
  return Status::Ok();
}

Status SqliteStore::LoadState() {
  KISO_ASSIGN_OR_RETURN(Revision rev, sqlite::ReadMeta(*writer_, "revision"));
  KISO_ASSIGN_OR_RETURN(Revision compact, sqlite::ReadMeta(*writer_, "compact_revision"));
  KISO_ASSIGN_OR_RETURN(compaction_cursor_, sqlite::ReadMeta(*writer_, "compaction_cursor"));
  revision_ = rev;
  compact_revision_ = compact;
  hub_.Publish(rev, {});
  // Leases get a full TTL again after a restart, as etcd renews them on a new leader.
  KISO_ASSIGN_OR_RETURN(SqliteQuery q, writer_->Query("SELECT id, ttl_seconds FROM lease"));
  auto now = options_.clock->Now();
  while (true) {
    KISO_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    std::chrono::seconds ttl(q.Int(1));
    leases_[q.Int(0)] = {ttl, now + ttl};
  }
  return Status::Ok();
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  // Taking each loop's lock once orders the flag before its next predicate
  // check, so no loop can miss the wake-up.
  { std::lock_guard lock(compact_mu_); }
  compact_cv_.notify_all();
  { std::lock_guard lock(lease_mu_); }
  lease_cv_.notify_all();
  { std::lock_guard lock(checkpoint_mu_); }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  if (lease_expirer_.joinable()) lease_expirer_.join();
  if (compactor_.joinable()) compactor_.join();
  if (committer_.joinable()) committer_.join();
  hub_.CloseAll(Status(Code::kCancelled, "store closed"));
}

CapClass SqliteStore::Cap() const {
  return {"CA", "single node: consistent and available, no partition tolerance (embedded SQLite)"};
}

Result<Revision> SqliteStore::CurrentRevision() { return revision_.load(); }

Result<RangeResult> SqliteStore::Range(const KeyRange& range, const RangeOptions& options) {
  KISO_RETURN_IF_ERROR(ValidateRange(range));
  return readers_->Read([&](SqliteDb& db) -> Result<RangeResult> {
    KISO_ASSIGN_OR_RETURN(Revision current, sqlite::ReadMeta(db, "revision"));
    KISO_ASSIGN_OR_RETURN(Revision compacted, sqlite::ReadMeta(db, "compact_revision"));
    if (options.revision > current) {
      return MakeStatus(Code::kInvalidArgument, "revision {} is in the future (current {})",
                        options.revision, current);
    }
    if (options.revision != 0 && options.revision < compacted) {
      return MakeStatus(Code::kCompacted, "revision {} has been compacted (compacted at {})",
                        options.revision, compacted);
    }
    KISO_ASSIGN_OR_RETURN(RangeResult result, sqlite::ReadRange(db, range, options));
    result.revision = current;
    return result;
  });
}

Result<WatchChannel::ReplayChunk> SqliteStore::ReadHistory(const KeyRange& range, Revision after,
                                                           Revision up_to) {
  // Whole revisions per chunk, so a chunk never splits a transaction's events.
  constexpr Revision kRevisionsPerChunk = 1000;
  Revision to = std::min(up_to, after + kRevisionsPerChunk);
  static const auto& kColumns = *new std::string(
      std::string(sqlite::kKvColumns) + ", p.key, p.value, p.create_rev, p.id, p.version, p.lease");
  std::string sql = fmt::format(
      "SELECT {} FROM history h LEFT JOIN history p ON p.id = h.prev_id AND p.version > 0 "
      "WHERE h.id > ?3 AND h.id <= ?4 AND {} ORDER BY h.id",
      kColumns, sqlite::RangeCondition(range, "h.key"));
  return readers_->Read([&](SqliteDb& db) -> Result<WatchChannel::ReplayChunk> {
    KISO_ASSIGN_OR_RETURN(Revision compacted, sqlite::ReadMeta(db, "compact_revision"));
    if (after < compacted) {
      return MakeStatus(Code::kCompacted,
                        "watch from revision {}: history has been compacted up to {}", after + 1,
                        compacted);
    }
    KISO_ASSIGN_OR_RETURN(SqliteQuery q, db.Query(sql));
    sqlite::BindRange(q, range);
    q.Bind(3, LastIdOf(after)).Bind(4, LastIdOf(to));
    WatchChannel::ReplayChunk chunk;
    chunk.scanned_to = to;
    while (true) {
      KISO_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      WatchEvent e;
      e.kv = sqlite::ReadKv(q);
      if (e.kv.version == 0) {
        e.type = WatchEvent::Type::kDelete;
        e.kv = KeyValue{.key = e.kv.key, .mod_revision = e.kv.mod_revision};
      }
      if (!q.IsNull(6)) e.prev_kv = sqlite::ReadKv(q, 6);
      chunk.events.push_back(std::move(e));
    }
    return chunk;
  });
}

Result<std::unique_ptr<Watch>> SqliteStore::WatchRange(const KeyRange& range, Revision after,
                                                       const WatchOptions& options) {
  KISO_RETURN_IF_ERROR(ValidateRange(range));
  if (after < 0) return Status(Code::kInvalidArgument, "watch revision must not be negative");
  if (Revision compacted = compact_revision_.load(); after < compacted) {
    return MakeStatus(Code::kCompacted,
                      "watch from revision {}: history has been compacted up to {}", after + 1,
                      compacted);
  }
  auto channel = std::make_shared<WatchChannel>(options.buffer_events);
  WatchHub::Registration reg = hub_.Add(range, after, options.prev_kv, channel);
  if (reg.published > after) {
    bool prev_kv = options.prev_kv;
    channel->SetReplay(
        [this, range, prev_kv](Revision from, Revision to) -> Result<WatchChannel::ReplayChunk> {
          KISO_ASSIGN_OR_RETURN(WatchChannel::ReplayChunk chunk, ReadHistory(range, from, to));
          if (!prev_kv) {
            for (auto& e : chunk.events) e.prev_kv.reset();
          }
          return chunk;
        },
        after, reg.published);
  }
  uint64_t id = reg.id;
  return std::unique_ptr<Watch>(
      std::make_unique<ChannelWatch>(channel, [this, id] { hub_.Remove(id); }));
}

// ---- Leases ----

Result<LeaseId> SqliteStore::GrantLease(std::chrono::seconds ttl) {
  if (ttl.count() <= 0) return Status(Code::kInvalidArgument, "lease TTL must be positive");
  static std::mutex rng_mu;
  static std::mt19937_64 rng{std::random_device{}()};
  LeaseId id = 0;
  {
    std::lock_guard lock(rng_mu);
    id = static_cast<LeaseId>(rng() >> 2) + 1;  // Positive, as etcd's lease ids are.
  }
  KISO_RETURN_IF_ERROR(Write([&](WriteTx& tx) -> Status {
    KISO_ASSIGN_OR_RETURN(SqliteQuery q,
                          tx.db().Query("INSERT INTO lease(id, ttl_seconds) VALUES (?1, ?2)"));
    KISO_RETURN_IF_ERROR(q.Bind(1, id).Bind(2, ttl.count()).Run());
    tx.OnCommit([this, id, ttl] {
      std::lock_guard lock(lease_mu_);
      leases_[id] = {ttl, options_.clock->Now() + ttl};
      lease_cv_.notify_all();
    });
    return Status::Ok();
  }));
  return id;
}

Status SqliteStore::KeepAliveLease(LeaseId lease) {
  std::lock_guard lock(lease_mu_);
  auto it = leases_.find(lease);
  auto now = options_.clock->Now();
  if (it == leases_.end() || it->second.deadline <= now) {
    return MakeStatus(Code::kNotFound, "lease {:x} not found or expired", lease);
  }
  it->second.deadline = now + it->second.ttl;
  return Status::Ok();
}

Result<int> SqliteStore::ExpireLeases() {
  std::vector<LeaseId> expired;
  {
    std::lock_guard lock(lease_mu_);
    auto now = options_.clock->Now();
    for (const auto& [id, state] : leases_) {
      if (state.deadline <= now) expired.push_back(id);
    }
  }
  int revoked = 0;
  for (LeaseId id : expired) {
    Status s = RevokeLease(id);
    if (s.ok()) {
      ++revoked;
    } else if (s.code() != Code::kNotFound) {
      return s;
    }
  }
  return revoked;
}

void SqliteStore::LeaseLoop() {
  std::unique_lock lock(lease_mu_);
  while (true) {
    if (stopping_) return;
    // Sleep until the earliest deadline (at most a second, so a FakeClock or
    // a clock jump is noticed), then revoke whatever has expired.
    auto wait = std::chrono::nanoseconds(std::chrono::seconds(1));
    auto now = options_.clock->Now();
    for (const auto& [id, state] : leases_) wait = std::min(wait, state.deadline - now);
    if (wait > std::chrono::nanoseconds::zero()) lease_cv_.wait_for(lock, wait);
    lock.unlock();
    Result<int> r = ExpireLeases();
    if (!r.ok()) spdlog::warn("lease expiry: {}", r.status().ToString());
    lock.lock();
  }
}

void SqliteStore::CheckpointLoop() {
  auto db = SqliteDb::Open(options_.path);
  if (!db.ok()) {
    spdlog::error("checkpointer: {}", db.status().ToString());
    return;
  }
  std::unique_lock lock(checkpoint_mu_);
  while (true) {
    checkpoint_cv_.wait(lock, [&] { return stopping_ || checkpoint_wanted_; });
    if (stopping_) return;
    checkpoint_wanted_ = false;
    lock.unlock();
    if (Status s = (*db)->CheckpointPassive(); !s.ok()) spdlog::warn("{}", s.ToString());
    lock.lock();
  }
}

// ---- Compaction ----

Status SqliteStore::Compact(Revision revision) {
  Status result = Write([&](WriteTx& tx) -> Status {
    KISO_ASSIGN_OR_RETURN(Revision compacted, sqlite::ReadMeta(tx.db(), "compact_revision"));
    Revision current = tx.revision();
    if (revision > current) {
      return MakeStatus(Code::kInvalidArgument, "compact revision {} is in the future (current {})",
                        revision, current);
    }
    if (revision <= compacted) {
      return MakeStatus(Code::kCompacted, "revision {} has been compacted (compacted at {})",
                        revision, compacted);
    }
    KISO_ASSIGN_OR_RETURN(
        SqliteQuery q, tx.db().Query("UPDATE meta SET value = ?1 WHERE name = 'compact_revision'"));
    KISO_RETURN_IF_ERROR(q.Bind(1, revision).Run());
    // A new pass scans from the first row: each key's newest value at the
    // previous compaction point may be superseded at this one.
    KISO_RETURN_IF_ERROR(
        tx.db().Exec("UPDATE meta SET value = 0 WHERE name = 'compaction_cursor'"));
    tx.OnCommit([this, revision] {
      std::lock_guard lock(compact_mu_);
      compact_revision_ = revision;
      compaction_cursor_ = 0;
      compact_cv_.notify_all();
    });
    return Status::Ok();
  });
  return result;
}

void SqliteStore::WaitForCompaction() {
  std::unique_lock lock(compact_mu_);
  compact_cv_.wait(lock, [&] { return compaction_cursor_ >= LastIdOf(compact_revision_.load()); });
}

void SqliteStore::CompactorLoop() {
  std::unique_lock lock(compact_mu_);
  while (true) {
    compact_cv_.wait(
        lock, [&] { return stopping_ || compaction_cursor_ < LastIdOf(compact_revision_.load()); });
    if (stopping_) return;
    lock.unlock();
    // One step: the next few history rows at or below the target (as many
    // as there are other writes in this group commit; see Options), committed
    // alongside ordinary writes. The pass's
    // position and target are read inside the job, where they cannot change
    // under it: a Compact committed since the last step restarts the pass.
    Status s = Write([&](WriteTx& tx) -> Status {
      SqliteDb& db = tx.db();
      KISO_ASSIGN_OR_RETURN(int64_t from, sqlite::ReadMeta(db, "compaction_cursor"));
      KISO_ASSIGN_OR_RETURN(Revision compact, sqlite::ReadMeta(db, "compact_revision"));
      int64_t target = LastIdOf(compact);
      if (from >= target) return Status::Ok();
      int64_t last = target;
      {
        KISO_ASSIGN_OR_RETURN(
            SqliteQuery q,
            db.Query("SELECT MAX(id) FROM (SELECT id FROM history WHERE id > ?1 AND id <= ?2 "
                     "ORDER BY id LIMIT ?3)"));
        int64_t others = static_cast<int64_t>(tx.batch_jobs()) - 1;
        int64_t rows = others == 0 ? options_.compaction_idle_rows
                                   : std::clamp(others, options_.compaction_min_rows,
                                                options_.compaction_max_rows);
        q.Bind(1, from).Bind(2, target).Bind(3, rows);
        KISO_ASSIGN_OR_RETURN(bool row, q.Step());
        if (row && !q.IsNull(0)) last = q.Int(0);
      }
      // etcd's rule: drop every event at or below the compaction revision
      // except each key's newest one, and drop that too if it is a deletion.
      // Both tables are read and written in id order only.
      KISO_ASSIGN_OR_RETURN(
          SqliteQuery del,
          db.Query("DELETE FROM history WHERE id > ?1 AND id <= ?2 AND (version = 0 OR id IN "
                   "(SELECT id FROM superseded WHERE id > ?1 AND id <= ?2 AND by <= ?3))"));
      KISO_RETURN_IF_ERROR(del.Bind(1, from).Bind(2, last).Bind(3, target).Run());
      KISO_ASSIGN_OR_RETURN(
          SqliteQuery forget,
          db.Query("DELETE FROM superseded WHERE id > ?1 AND id <= ?2 AND by <= ?3"));
      KISO_RETURN_IF_ERROR(forget.Bind(1, from).Bind(2, last).Bind(3, target).Run());
      KISO_ASSIGN_OR_RETURN(
          SqliteQuery meta,
          db.Query("UPDATE meta SET value = ?1 WHERE name = 'compaction_cursor'"));
      KISO_RETURN_IF_ERROR(meta.Bind(1, last).Run());
      tx.OnCommit([this, last] {
        std::lock_guard lock(compact_mu_);
        compaction_cursor_ = last;
        compact_cv_.notify_all();
      });
      return Status::Ok();
    });
    lock.lock();
    if (!s.ok()) {
      spdlog::warn("compaction step: {}; retrying in 1s", s.ToString());
      compact_cv_.wait_for(lock, std::chrono::seconds(1));
    }
  }
}

}  // namespace kiso::store
