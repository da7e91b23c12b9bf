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
// kSubBits. A deletion is a row with version 0 (a tombstone).
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
CREATE INDEX IF NOT EXISTS history_key ON history(key, id);
CREATE TABLE IF NOT EXISTS live(key BLOB PRIMARY KEY, id INTEGER NOT NULL,
                                lease INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS live_lease ON live(lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS lease(id INTEGER PRIMARY KEY, ttl_seconds INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', 1), ('revision', 0),
  ('compact_revision', 0), ('compaction_cursor', 0);
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
