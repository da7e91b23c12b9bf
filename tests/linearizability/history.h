// Parsers for the recorded histories in data/ (see data/README.md).
#pragma once

#include <string>
#include <vector>

#include "linearizability/checker.h"
#include "linearizability/models.h"

namespace kiso::linearizability {

// A Jepsen etcd log ("INFO  jepsen.util - 3	:invoke	:cas	[3 0]"). Each
// line is one tick of time. Failed reads and writes never took effect and are
// dropped; :info and unfinished operations have an unknown outcome.
bool ParseJepsenLog(const std::string& path, std::vector<Operation<RegisterModel>>* ops,
                    std::string* error);

// A porcupine KV history ({:process 0, :type :invoke, :f :get, :key "5", ...}),
// partitioned by key.
bool ParseKvLog(const std::string& path, std::vector<std::vector<Operation<AppendKvModel>>>* parts,
                std::string* error);

}  // namespace kiso::linearizability
