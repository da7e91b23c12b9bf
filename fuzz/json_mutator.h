// A structure-aware mutator for fuzz targets whose input is a JSON object (a
// stored Kubernetes object): instead of flipping bytes, which mostly makes
// text that does not parse, it changes one value at a time the way a bad
// object differs from a good one — a value of another type, an extreme
// number, an odd string ("abc", "101%"), a field removed, copied elsewhere or
// added from the names the document already uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace kiso::fuzz {

// Mutates the JSON text in data[0, size) in place, returning the new size
// (≤ max_size), or 0 when the text is not a JSON object (the caller then
// falls back to byte mutations).
size_t MutateJson(uint8_t* data, size_t size, size_t max_size, std::mt19937_64& rng);

}  // namespace kiso::fuzz
