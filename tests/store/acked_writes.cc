#include "acked_writes.h"

#include <fmt/format.h>

#include <chrono>
#include <sstream>

namespace kiso::store {

void AckedWrites::Add(const std::string& line) {
  std::istringstream in(line);
  std::string kind, key, value;
  Revision rev = 0;
  in >> kind >> rev;
  if (!in) return;
  if (kind == "compact") {
    compacted_ = std::max(compacted_, rev);  // Announced before issued: assume it happened.
    return;
  }
  in >> key;
  if (kind == "put") {
    in >> value;
    acked_[rev].push_back({key, value});
  } else if (kind == "del") {
    acked_[rev].push_back({key, std::nullopt});
  }
}

std::vector<std::string> AckedWrites::Violations(Store& store, size_t limit) const {
  std::vector<std::string> out;
  auto report = [&](std::string what) {
    if (out.size() < limit) out.push_back(std::move(what));
  };
  auto current = store.CurrentRevision();
  if (!current.ok()) return {"the store's revision: " + current.status().ToString()};
  if (!acked_.empty() && *current < acked_.rbegin()->first) {
    report(fmt::format("the store is at revision {}, below the acknowledged {}", *current,
                       acked_.rbegin()->first));
  }
  // Every acknowledged write above the compaction point, at its revision.
  for (auto it = acked_.upper_bound(compacted_); it != acked_.end(); ++it) {
    for (const Ack& a : it->second) {
      auto got = store.Get(a.key, it->first);
      if (a.value) {
        if (!got.ok()) {
          report(fmt::format("{}@{}: {}", a.key, it->first, got.status().ToString()));
        } else if (got->value != *a.value || got->mod_revision != it->first) {
          report(fmt::format("{}@{} is {}@{}", a.key, it->first, got->value.substr(0, 12),
                             got->mod_revision));
        }
      } else if (got.status().code() != Code::kNotFound) {
        report(fmt::format("{}@{} was deleted, and is there", a.key, it->first));
      }
    }
  }
  // Watch replay from the compaction point: no gaps, and replaying it over
  // the snapshot at that point rebuilds the current data exactly.
  auto base = store.Range(KeyRange::Prefix("/d/"), {.revision = compacted_});
  if (!base.ok()) return out.empty() ? std::vector{base.status().ToString()} : out;
  std::map<std::string, std::string> data;
  for (const auto& kv : base->kvs) data[kv.key] = kv.value;
  auto watch = store.WatchRange(KeyRange::Prefix("/d/"), compacted_, {});
  if (!watch.ok()) return out.empty() ? std::vector{watch.status().ToString()} : out;
  Revision last = compacted_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (last < *current && std::chrono::steady_clock::now() < deadline) {
    auto events = (*watch)->Next(deadline);
    if (!events.ok()) {
      report("watch: " + events.status().ToString());
      break;
    }
    for (const auto& e : *events) {
      if (e.kv.mod_revision != last && e.kv.mod_revision != last + 1) {
        report(fmt::format("revision gap after {}: next event at {}", last, e.kv.mod_revision));
      }
      last = e.kv.mod_revision;
      if (e.type == WatchEvent::Type::kPut) {
        data[e.kv.key] = e.kv.value;
      } else {
        data.erase(e.kv.key);
      }
    }
  }
  if (last != *current) report(fmt::format("the replay ended at {}, not {}", last, *current));
  auto now = store.Range(KeyRange::Prefix("/d/"), {});
  if (!now.ok()) return out.empty() ? std::vector{now.status().ToString()} : out;
  std::map<std::string, std::string> expected;
  for (const auto& kv : now->kvs) expected[kv.key] = kv.value;
  for (const auto& [key, value] : expected) {
    auto it = data.find(key);
    if (it == data.end() || it->second != value) {
      report(fmt::format("{} is {} now; replay gives {}", key, value.substr(0, 12),
                         it == data.end() ? "nothing" : it->second.substr(0, 12)));
    }
  }
  for (const auto& [key, value] : data) {
    if (!expected.count(key)) {
      report(fmt::format("{} is gone now; replay gives {} (compacted at {})", key,
                         value.substr(0, 12), compacted_));
    }
  }
  return out;
}

}  // namespace kiso::store
