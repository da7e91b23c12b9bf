// NodeStreams: pods/log, pods/exec, pods/attach and pods/portforward are
// served by the agent on the pod's node; the API server routes them there.
// A node whose agent has not registered answers with a Status that says why:
// no pod, no node assigned yet, or no agent on that node serving streams.
#pragma once

#include <map>
#include <mutex>

#include "apiserver/handlers.h"

namespace kiso::apiserver {

class NodeStreams {
 public:
  Response Handle(const Context& ctx, const Target& t, const Request& req);
  void Register(const std::string& node, NodeStreamHandler handler);

 private:
  std::mutex mu_;
  std::map<std::string, NodeStreamHandler> handlers_;
};

}  // namespace kiso::apiserver
