// The flags that make a machine a node, the same for `kiso server` (its
// embedded node) and `kiso agent`.
#pragma once

#include <CLI/CLI.hpp>

#include "agent/node.h"

namespace kiso::cmd {

// --node-name, --node-ip, --pod-cidr, --cni-bridge, --cluster-cidr,
// --runtime and the ingress controller's --disable-ingress,
// --ingress-http-port, --ingress-https-port, into `node`.
void AddNodeFlags(CLI::App& app, agent::NodeOptions& node);

}  // namespace kiso::cmd
