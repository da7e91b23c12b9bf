// The RuntimeClasses kiso's nodes serve, made when the server starts (as K3s
// ships a RuntimeClass per runtime it offers): `runc`, `crun` and `wasm`,
// each named as its handler. One already there, perhaps changed by an
// operator, is left as it is.
#pragma once

#include "client/client.h"
#include "common/status.h"

namespace kiso::controller {

Status EnsureDefaultRuntimeClasses(client::Client* client);

}  // namespace kiso::controller
