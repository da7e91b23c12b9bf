// One HTTPS POST to an admission webhook, within a deadline: connect, TLS
// (the server verified against `ca_pem`, or the system's roots when empty,
// for the name `server_name`), request and response all count against
// `timeout`. The response body is bounded (api::kMaxDocumentBytes).
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace kiso::apiserver {

struct WebhookTarget {
  std::string host;  // An address or a name to connect to.
  int port = 443;
  std::string server_name;  // The name the certificate must carry (SNI too).
  std::string path;         // With its query.
  std::string ca_pem;
};

struct WebhookReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

// Unavailable with the cause ("context deadline exceeded" for the deadline,
// as Go's client says it) when no full response came.
Result<WebhookReply> PostWebhook(const WebhookTarget& target, const std::string& body,
                                 std::chrono::milliseconds timeout);

}  // namespace kiso::apiserver
