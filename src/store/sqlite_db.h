// A thin RAII layer over one SQLite connection: cached prepared statements
// and error codes mapped to Status with the database path in the message.
// Not thread-safe: one connection belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace kiso::store {

class SqliteDb;

// A prepared statement in use; resets and clears its bindings when destroyed.
class SqliteQuery {
 public:
  SqliteQuery(SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteQuery();
  SqliteQuery(SqliteQuery&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  SqliteQuery& operator=(SqliteQuery&&) = delete;

  SqliteQuery& Bind(int index, int64_t value);
  SqliteQuery& Bind(int index, std::string_view blob);
  SqliteQuery& BindText(int index, std::string_view text);
  // Advances to the next row: true if there is one, false when done.
  Result<bool> Step();
  // Runs a statement that returns no rows.
  Status Run();

  int64_t Int(int column) const;
  std::string Blob(int column) const;
  bool IsNull(int column) const;

 private:
  SqliteDb* db_;
  sqlite3_stmt* stmt_;
};

class SqliteDb {
 public:
  // Opens (creating if needed) the database at `path`.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows (DDL, PRAGMA, BEGIN…).
  Status Exec(std::string_view sql);
  // A cached prepared statement for `sql`.
  Result<SqliteQuery> Query(const std::string& sql);
  // Runs one statement that returns no rows through the statement cache: for
  // statements run constantly (BEGIN, COMMIT, SAVEPOINT), unlike Exec.
  Status Run(const std::string& sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;

  // Calls `hook(pages in the WAL)` after each commit on this connection.
  // `hook` must outlive the connection.
  void SetWalHook(std::function<void(int)>* hook);
  // Copies WAL pages into the database without blocking readers or writers
  // (SQLITE_CHECKPOINT_PASSIVE).
  Status CheckpointPassive();

  // Maps a SQLite result code to a Status naming the database and `what`.
  Status Error(int rc, std::string_view what) const;
  const std::string& path() const { return path_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace kiso::store
