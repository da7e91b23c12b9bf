// Recovery from a bug a unit of work found: where a loop (a controller's
// worker, the scheduler, a node's pod workers, an informer, an API request)
// catches what one unit threw, it reports it here and goes on with the next —
// no object or request may end the process (Kubernetes' controllers recover
// from a panic per key the same way).
#pragma once

#include <exception>
#include <string_view>

namespace kiso {

// Logs `what` (from `where`: "deployment-controller: default/web") as an
// error. In a fuzzing build (KISO_FUZZ) it aborts instead: the fuzzer must
// see the bug that the loop would have survived.
void ReportRecovered(std::string_view where, std::string_view what);

// The message of the exception being handled (for `catch (...)`).
std::string_view CurrentExceptionMessage();

}  // namespace kiso
