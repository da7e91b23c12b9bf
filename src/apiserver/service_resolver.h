// Where the API server itself reaches a Service (kube-apiserver's endpoint
// service resolver, used for admission webhooks and aggregated APIs): the
// Service's port with the given number, then a ready address of its
// Endpoints on the port of that port's name, at random among them.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso::apiserver {

struct Context;

struct ServiceEndpoint {
  std::string address;
  int port = 0;
};

// Unavailable in upstream's words when the Service, the port or a ready
// endpoint is missing.
Result<ServiceEndpoint> ResolveServiceEndpoint(const Context& ctx, std::string_view ns,
                                               std::string_view name, int64_t port);

}  // namespace kiso::apiserver
