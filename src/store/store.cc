#include "store/store.h"

#include <set>

#include "store/etcd_store.h"
#include "store/sqlite_store.h"

namespace kiso::store {

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return KeyRange::kRangeToEnd;
}

KeyRange KeyRange::Prefix(std::string prefix) {
  std::string end = PrefixEnd(prefix);
  return {std::move(prefix), std::move(end)};
}

bool KeyRange::Contains(std::string_view k) const {
  if (IsSingle()) return k == key;
  if (k < std::string_view(key)) return false;
  return end == kRangeToEnd || k < std::string_view(end);
}

Status ValidateRange(const KeyRange& range) {
  if (range.key.empty() && range.end != KeyRange::kRangeToEnd) {
    return Status(Code::kInvalidArgument, "key must not be empty");
  }
  if (!range.IsSingle() && range.end != KeyRange::kRangeToEnd && range.end <= range.key) {
    return MakeStatus(Code::kInvalidArgument, "invalid range: end {:?} is not after start {:?}",
                      range.end, range.key);
  }
  return Status::Ok();
}

namespace {

Status ValidateOps(const std::vector<TxnOp>& ops) {
  std::set<std::string_view> written;
  for (const TxnOp& op : ops) {
    if (op.type != TxnOp::Type::kRange && op.range.IsSingle() &&
        !written.insert(op.range.key).second) {
      // etcd refuses these too ("duplicate key given in txn request").
      return MakeStatus(Code::kInvalidArgument, "key {:?} is written twice in one transaction",
                        op.range.key);
    }
    KISO_RETURN_IF_ERROR(ValidateRange(op.range));
    switch (op.type) {
      case TxnOp::Type::kPut:
        if (!op.range.IsSingle()) return Status(Code::kInvalidArgument, "put takes a single key");
        if (op.value.size() > kMaxValueBytes) {
          return MakeStatus(Code::kInvalidArgument,
                            "value for key {:?} is {} bytes; the limit is {} bytes", op.range.key,
                            op.value.size(), kMaxValueBytes);
        }
        break;
      case TxnOp::Type::kRange:
        if (op.options.revision != 0) {
          return Status(Code::kInvalidArgument,
                        "a read inside a transaction must be at revision 0");
        }
        break;
      case TxnOp::Type::kDelete:
        break;
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateTxn(const TxnRequest& txn) {
  if (txn.compares.size() > kMaxTxnOps || txn.success.size() > kMaxTxnOps ||
      txn.failure.size() > kMaxTxnOps) {
    return MakeStatus(Code::kInvalidArgument, "too many operations in transaction (limit {})",
                      kMaxTxnOps);
  }
  for (const Compare& c : txn.compares) {
    if (c.key.empty()) return Status(Code::kInvalidArgument, "compare: key must not be empty");
  }
  KISO_RETURN_IF_ERROR(ValidateOps(txn.success));
  return ValidateOps(txn.failure);
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view url) {
  constexpr std::string_view kSqlite = "sqlite://";
  constexpr std::string_view kEtcd = "etcd://";
  if (url.starts_with(kSqlite)) {
    std::string path(url.substr(kSqlite.size()));
    if (path.empty())
      return Status(Code::kInvalidArgument, "sqlite:// needs a path: sqlite:///abs/kiso.db");
    KISO_ASSIGN_OR_RETURN(auto store, SqliteStore::Open(SqliteStore::Options{.path = path}));
    return std::unique_ptr<Store>(std::move(store));
  }
  if (url.starts_with(kEtcd)) {
    return OpenEtcdStore(EtcdOptions{.endpoints = std::string(url.substr(kEtcd.size()))});
  }
  return MakeStatus(Code::kInvalidArgument,
                    "unknown store URL {:?}: use sqlite:///path/kiso.db or etcd://host:port", url);
}

// ---- Conveniences: every backend gets the same behaviour from Range and Txn. ----

Result<KeyValue> Store::Get(std::string_view key, Revision revision) {
  KISO_ASSIGN_OR_RETURN(RangeResult r,
                        Range(KeyRange::Single(std::string(key)), {.revision = revision}));
  if (r.kvs.empty()) return MakeStatus(Code::kNotFound, "key {:?} not found", key);
  return std::move(r.kvs.front());
}

namespace {

// The value a successful put stored, derived from the value it replaced.
KeyValue PutResult(std::string_view key, std::string_view value, LeaseId lease, Revision rev,
                   const std::vector<KeyValue>& prev) {
  KeyValue kv{std::string(key), std::string(value), rev, rev, 1, lease};
  if (!prev.empty()) {
    kv.create_revision = prev.front().create_revision;
    kv.version = prev.front().version + 1;
  }
  return kv;
}

}  // namespace

Result<KeyValue> Store::Put(std::string_view key, std::string_view value, LeaseId lease) {
  TxnRequest txn;
  txn.success.push_back(TxnOp::Put(std::string(key), std::string(value), lease));
  KISO_ASSIGN_OR_RETURN(TxnResponse r, Txn(txn));
  return PutResult(key, value, lease, r.revision, r.results.at(0).kvs);
}

Result<KeyValue> Store::Create(std::string_view key, std::string_view value, LeaseId lease) {
  TxnRequest txn;
  txn.compares.push_back(Compare::Missing(std::string(key)));
  txn.success.push_back(TxnOp::Put(std::string(key), std::string(value), lease));
  KISO_ASSIGN_OR_RETURN(TxnResponse r, Txn(txn));
  if (!r.succeeded) return MakeStatus(Code::kAlreadyExists, "key {:?} already exists", key);
  return PutResult(key, value, lease, r.revision, {});
}

Result<KeyValue> Store::Update(std::string_view key, std::string_view value, Revision expected,
                               LeaseId lease, KeyValue* current) {
  TxnRequest txn;
  txn.compares.push_back(Compare::ModRevisionIs(std::string(key), expected));
  txn.success.push_back(TxnOp::Put(std::string(key), std::string(value), lease));
  txn.failure.push_back(TxnOp::Get(std::string(key)));
  KISO_ASSIGN_OR_RETURN(TxnResponse r, Txn(txn));
  if (r.succeeded) return PutResult(key, value, lease, r.revision, r.results.at(0).kvs);
  const auto& kvs = r.results.at(0).kvs;
  if (kvs.empty()) return MakeStatus(Code::kNotFound, "key {:?} not found", key);
  if (current != nullptr) *current = kvs.front();
  return MakeStatus(Code::kConflict, "key {:?} is at mod_revision {}, not {}", key,
                    kvs.front().mod_revision, expected);
}

Result<Store::Deleted> Store::Delete(std::string_view key, Revision expected, KeyValue* current) {
  TxnRequest txn;
  if (expected != 0) txn.compares.push_back(Compare::ModRevisionIs(std::string(key), expected));
  txn.success.push_back(TxnOp::Delete(KeyRange::Single(std::string(key))));
  txn.failure.push_back(TxnOp::Get(std::string(key)));
  KISO_ASSIGN_OR_RETURN(TxnResponse r, Txn(txn));
  const auto& kvs = r.results.at(0).kvs;
  if (kvs.empty()) return MakeStatus(Code::kNotFound, "key {:?} not found", key);
  if (!r.succeeded) {
    if (current != nullptr) *current = kvs.front();
    return MakeStatus(Code::kConflict, "key {:?} is at mod_revision {}, not {}", key,
                      kvs.front().mod_revision, expected);
  }
  return Deleted{kvs.front(), r.revision};
}

}  // namespace kiso::store
