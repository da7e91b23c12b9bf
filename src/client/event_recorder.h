// EventRecorder: core/v1 Events about objects, aggregated like client-go's
// recorder: a repeat of the same (object, type, reason, message) bumps count
// and lastTimestamp on the existing Event instead of creating another.
#pragma once

#include <boost/json/value.hpp>
#include <map>
#include <mutex>
#include <string>

#include "client/client.h"

namespace kiso::client {

class EventRecorder {
 public:
  EventRecorder(Client* client, std::string component)
      : client_(client), component_(std::move(component)) {}
  // `object` is the involved object (kind, apiVersion and metadata are read).
  // `type` is Normal or Warning. Failures are logged, never returned: events are best effort.
  void Record(const boost::json::value& object, const std::string& type, const std::string& reason,
              const std::string& message);

 private:
  Client* client_;
  std::string component_;
  std::mutex mu_;
  struct Seen {
    std::string ns, name;
    int64_t count = 0;
  };
  std::map<std::string, Seen> seen_;  // Aggregation key → the Event written.
};

}  // namespace kiso::client
