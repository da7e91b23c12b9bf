// Random numbers that are not secrets: uids, generated name suffixes, temporary
// file names, ports and addresses picked from a range, ties broken at random.
// (Keys, serials and tokens come from OpenSSL's RAND_bytes.)
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace kiso {

// The calling thread's generator, seeded from std::random_device when the
// thread first draws. It lives on the heap: a generator held in thread_local
// storage itself (2.5–5 KB each) is reserved and zeroed in every thread the
// process starts, whether or not the thread ever draws.
std::mt19937_64& ThreadRng();

// A uniformly random value in [0, bound); 0 when bound is 0.
uint64_t RandomBelow(uint64_t bound);

// `n` characters of Kubernetes' name-suffix alphabet (utilrand.String's: no
// vowels, no 0, 1 or 3, so no words), as generateName and generated volume
// names use.
std::string RandomNameSuffix(size_t n = 5);

}  // namespace kiso
