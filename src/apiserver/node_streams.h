// NodeStreams: pods/log, pods/exec, pods/attach and pods/portforward are
// served by the agent on the pod's node; the API server routes them there.
// Until a node agent registers a stream endpoint (the node-agent issue), each
// answers with a Status that says why: no pod, no node assigned yet, or no
// agent on that node serving streams.
#pragma once

#include "apiserver/handlers.h"

namespace kiso::apiserver {

class NodeStreams {
 public:
  Response Handle(const Context& ctx, const Target& t, const Request& req);
};

}  // namespace kiso::apiserver
