#include "store/sqlite_rows.h"

#include <fmt/format.h>

#include <array>

namespace kiso::store::sqlite {

KeyValue ReadKv(const SqliteQuery& q, int first) {
  KeyValue kv;
  kv.key = q.Blob(first);
  kv.value = q.Blob(first + 1);
  kv.create_revision = q.Int(first + 2);
  kv.mod_revision = RevisionOf(q.Int(first + 3));
  kv.version = q.Int(first + 4);
  kv.lease = q.Int(first + 5);
  return kv;
}

std::string RangeCondition(const KeyRange& range, const char* column) {
  if (range.IsSingle()) return fmt::format("{} = ?1", column);
  if (range.end == KeyRange::kRangeToEnd) return fmt::format("{} >= ?1", column);
  return fmt::format("{0} >= ?1 AND {0} < ?2", column);
}

void BindRange(SqliteQuery& q, const KeyRange& range) {
  q.Bind(1, range.key);
  if (!range.IsSingle() && range.end != KeyRange::kRangeToEnd) q.Bind(2, range.end);
}

Result<int64_t> ReadMeta(SqliteDb& db, const char* name) {
  KISO_ASSIGN_OR_RETURN(SqliteQuery q, db.Query("SELECT value FROM meta WHERE name = ?1"));
  q.BindText(1, name);
  KISO_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row)
    return MakeStatus(Code::kDataLoss, "sqlite {}: meta value {} is missing", db.path(), name);
  return q.Int(0);
}

namespace {

// Latest state: `live` points at each key's newest event.
std::string LatestSql(const KeyRange& range, bool count) {
  std::string where = RangeCondition(range, "l.key");
  if (count) return fmt::format("SELECT COUNT(*) FROM live l WHERE {}", where);
  return fmt::format(
      "SELECT {} FROM live l JOIN history h ON h.id = l.id WHERE {} ORDER BY l.key LIMIT ?3",
      kKvColumns, where);
}

// A past revision R: a live key last written at or below R has that value at
// R; a key written after R (or deleted after it) had the value its first event
// after R replaced, if any. Only `live`'s key order and history ids are used:
// the cost is the range's live keys plus the events after R.
std::string AtRevisionSql(const KeyRange& range, bool count) {
  std::string rows = fmt::format(
      "SELECT l.key, h.value, h.create_rev, h.id, h.version, h.lease "
      "FROM live l JOIN history h ON h.id = l.id WHERE {} AND l.id <= ?4 "
      "UNION ALL "
      "SELECT p.key, p.value, p.create_rev, p.id, p.version, p.lease "
      "FROM (SELECT MIN(id) AS first FROM history WHERE id > ?4 AND {} GROUP BY key) c "
      "JOIN history f ON f.id = c.first JOIN history p ON p.id = f.prev_id AND p.version > 0",
      RangeCondition(range, "l.key"), RangeCondition(range, "key"));
  if (count) return fmt::format("SELECT COUNT(*) FROM ({})", rows);
  // A compound's ORDER BY lets SQLite merge the two sides, `live` read in
  // its stored key order (hence l.key above, not h.key), so LIMIT stops the scan.
  return rows + " ORDER BY 1 LIMIT ?3";
}

// The statements reading one shape of range (a key, [start, end), or
// everything from a key on), built once: reads and puts use them constantly.
struct RangeSql {
  std::string latest, latest_count, at, at_count;
};

const RangeSql& SqlFor(const KeyRange& range) {
  static const std::array<RangeSql, 3> kByShape = [] {
    std::array<RangeSql, 3> out;
    const KeyRange examples[] = {KeyRange::Single("k"), KeyRange::Between("a", "b"),
                                 KeyRange{"a", KeyRange::kRangeToEnd}};
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = {LatestSql(examples[i], false), LatestSql(examples[i], true),
                AtRevisionSql(examples[i], false), AtRevisionSql(examples[i], true)};
    }
    return out;
  }();
  if (range.IsSingle()) return kByShape[0];
  return kByShape[range.end == KeyRange::kRangeToEnd ? 2 : 1];
}

}  // namespace

Result<RangeResult> ReadRange(SqliteDb& db, const KeyRange& range, const RangeOptions& options) {
  RangeResult result;
  bool latest = options.revision == 0;
  if (!options.count_only) {
    KISO_ASSIGN_OR_RETURN(SqliteQuery q,
                          db.Query(latest ? SqlFor(range).latest : SqlFor(range).at));
    BindRange(q, range);
    // One row past the limit tells whether there is more.
    q.Bind(3, options.limit > 0 ? options.limit + 1 : int64_t{-1});
    if (!latest) q.Bind(4, LastIdOf(options.revision));
    while (true) {
      KISO_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (options.limit > 0 && static_cast<int64_t>(result.kvs.size()) == options.limit) {
        result.more = true;
        break;
      }
      result.kvs.push_back(ReadKv(q));
    }
    result.count = static_cast<int64_t>(result.kvs.size());
  }
  if (options.count_only || result.more) {
    KISO_ASSIGN_OR_RETURN(SqliteQuery q,
                          db.Query(latest ? SqlFor(range).latest_count : SqlFor(range).at_count));
    BindRange(q, range);
    if (!latest) q.Bind(4, LastIdOf(options.revision));
    KISO_ASSIGN_OR_RETURN(bool row, q.Step());
    result.count = row ? q.Int(0) : 0;
  }
  return result;
}

Result<std::vector<LiveKv>> ReadLiveRange(SqliteDb& db, const KeyRange& range) {
  KISO_ASSIGN_OR_RETURN(SqliteQuery q, db.Query(SqlFor(range).latest));
  BindRange(q, range);
  q.Bind(3, int64_t{-1});
  std::vector<LiveKv> out;
  while (true) {
    KISO_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({ReadKv(q), q.Int(3)});  // Column 3 is the history id.
  }
  return out;
}

Result<std::optional<LiveKv>> ReadLive(SqliteDb& db, std::string_view key) {
  KISO_ASSIGN_OR_RETURN(std::vector<LiveKv> found,
                        ReadLiveRange(db, KeyRange::Single(std::string(key))));
  if (found.empty()) return std::optional<LiveKv>();
  return std::optional<LiveKv>(std::move(found.front()));
}

}  // namespace kiso::store::sqlite
