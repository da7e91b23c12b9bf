// What store_crash_writer acknowledged, and the check that a store, reopened
// after the writer was killed (durability_test) or its machine lost power
// (power_cut_test), still holds all of it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace kiso::store {

class AckedWrites {
 public:
  // One line of the writer's: "put REV KEY VALUE", "del REV KEY" or "compact
  // REV"; anything else is ignored.
  void Add(const std::string& line);
  bool empty() const { return acked_.empty(); }
  size_t size() const { return acked_.size(); }

  // What `store` gets wrong: an acknowledged write above the compaction point
  // that is not at its revision, a revision gap in the watch replay, or a
  // replay that does not rebuild the current data. Empty when it holds
  // everything. At most `limit` findings.
  std::vector<std::string> Violations(Store& store, size_t limit = 20) const;

 private:
  struct Ack {
    std::string key;
    std::optional<std::string> value;  // nullopt: a deletion
  };
  std::map<Revision, std::vector<Ack>> acked_;
  Revision compacted_ = 0;
};

}  // namespace kiso::store
