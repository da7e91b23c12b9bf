// Row-level helpers shared by SqliteStore's read path and its committer:
// the schema, event ids, and reading key ranges on any connection.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "store/sqlite_db.h"
#include "store/store.h"

namespace kiso::store::sqlite {

// Schema. `history.id` packs etcd's {main, sub} revision pair: the main
// revision in the high bits, the op's index within its transaction in the low
// kSubBits. A deletion is a row with version 0 (a tombstone). `prev_id` is the
// event the row replaced (0 for a key's first); `superseded` says the other
// way round which event replaced a row, keyed by the replaced row's id, so a
// compaction step deletes from both tables in id order and nothing is keyed
// by the key but `live` (schema 1 had an index history(key, id), whose
// entries each compacted row removed from a random page).
inline constexpr int kSchemaVersion = 2;
inline constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history(
  id INTEGER PRIMARY KEY,
  key BLOB NOT NULL,
  value BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease INTEGER NOT NULL,
  prev_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS superseded(id INTEGER PRIMARY KEY, by INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS live(key BLOB PRIMARY KEY, id INTEGER NOT NULL,
                                lease INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS live_lease ON live(lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS lease(id INTEGER PRIMARY KEY, ttl_seconds INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', 2), ('revision', 0),
  ('compact_revision', 0), ('compaction_cursor', 0);
)sql";

// Brings a schema 1 database (kSchema above has run) to schema 2: fills
// `superseded` from `prev_id` and drops the key index. One transaction; run
// again after a crash, it finishes the same way.
inline constexpr const char* kMigrateFrom1 = R"sql(
BEGIN IMMEDIATE;
INSERT OR IGNORE INTO superseded(id, by)
  SELECT h.prev_id, h.id FROM history h
  WHERE h.prev_id != 0 AND EXISTS (SELECT 1 FROM history p WHERE p.id = h.prev_id);
DROP INDEX IF EXISTS history_key;
UPDATE meta SET value = 2 WHERE name = 'schema';
COMMIT;
)sql";

inline constexpr int kSubBits = 20;
inline constexpr int64_t kMaxSub = (int64_t{1} << kSubBits) - 1;
inline int64_t EventId(Revision rev, int64_t sub) { return (rev << kSubBits) | sub; }
inline Revision RevisionOf(int64_t id) { return id >> kSubBits; }
inline int64_t LastIdOf(Revision rev) { return EventId(rev, kMaxSub); }

// The columns every KeyValue query selects, in this order.
inline constexpr const char* kKvColumns = "h.key, h.value, h.create_rev, h.id, h.version, h.lease";

// Reads a KeyValue from columns [first, first + 6) of `q` (see kKvColumns).
KeyValue ReadKv(const SqliteQuery& q, int first = 0);

// The SQL condition selecting `range` on `column`, using parameters ?1 and ?2.
std::string RangeCondition(const KeyRange& range, const char* column);
// Binds ?1 and ?2 for RangeCondition.
void BindRange(SqliteQuery& q, const KeyRange& range);

// Reads meta values.
Result<int64_t> ReadMeta(SqliteDb& db, const char* name);

// Reads `range` on `db` at the latest state (options.revision == 0) or at an
// older revision. REQUIRES: inside a transaction; the revision is checked by the caller.
Result<RangeResult> ReadRange(SqliteDb& db, const KeyRange& range, const RangeOptions& options);

// A live value with the id of the history event that wrote it.
struct LiveKv {
  KeyValue kv;
  int64_t id = 0;
};
// The live values in `range`, ascending by key.
Result<std::vector<LiveKv>> ReadLiveRange(SqliteDb& db, const KeyRange& range);
// The live value of `key`, or nullopt.
Result<std::optional<LiveKv>> ReadLive(SqliteDb& db, std::string_view key);

}  // namespace kiso::store::sqlite
