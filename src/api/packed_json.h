// JSON documents kept long and never changed (the watch cache's decoded
// objects, which every in-process informer shares), each packed into one
// block sized to it instead of a heap allocation per object, array, key and
// long string (a pod: about 120 of them, 7.4 KB from the heap against 5.2 KB
// packed).
#pragma once

#include <boost/json/value.hpp>
#include <memory>
#include <string_view>

#include "common/status.h"

namespace kiso::api {

// ParseJson (api/object.h), the value's memory taken from `storage` (a
// scratch arena, say) instead of the heap.
Result<boost::json::value> ParseJson(std::string_view text, bool strict,
                                     boost::json::storage_ptr storage);

// A copy of `v` in one block of exactly the size it takes. The copy is
// read-only; a value copied from it (`json::value x = *packed`) shares its
// storage, as boost::json's copies do, and allocates from the heap as usual,
// from any thread, keeping the block alive while it lives.
std::shared_ptr<const boost::json::value> PackedCopy(const boost::json::value& v);

// ParseJson's decode (bounded as it is) of a stored object, packed, without
// metadata.managedFields: what in-process watchers take. The work is done on
// a scratch arena (one block, freed on return) rather than the heap.
Result<std::shared_ptr<const boost::json::value>> PackedDecode(std::string_view text);

}  // namespace kiso::api
