// Client: how the scheduler, controllers and agents talk to the API — the
// same verbs and semantics as over HTTPS, whether the transport is in-process
// (inside `kiso server`) or remote. Errors arrive as Status codes mapped from
// the API's reasons: NotFound, AlreadyExists, Conflict, Compacted (410),
// InvalidArgument (400/422), Unavailable, Internal.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/resources.h"
#include "apiserver/http/http.h"
#include "common/status.h"

namespace kiso::client {

// A streamed answer's body (a watch's, a followed log's), read on the thread
// that asks for it.
class StreamedBody {
 public:
  virtual ~StreamedBody() = default;
  // Appends to `out` what arrives by `deadline` (whatever is there, once
  // something is). False once the body has ended — its last chunk, the
  // connection closed or failed, or Cancel — after appending what came first.
  virtual bool Read(std::string& out, std::chrono::steady_clock::time_point deadline) = 0;
  // From any thread: a Read under way returns promptly, and every later one at once.
  virtual void Cancel() = 0;
};

// Sends one request and returns the response; streamed bodies come back with
// Response::stream set, for the caller to drive. Thread-safe.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual apiserver::Response RoundTrip(const apiserver::Request& request) = 0;
  // A streamed request (watch=true, follow=true) whose body the caller reads
  // itself: the answer goes to `head`, and its body, when it is a byte
  // stream, is returned (null otherwise: an error, or a watch answered in
  // process with Response::events). By default RoundTrip's answer, its
  // Response::stream run on a thread of its own; a transport that can read
  // the stream on the caller's thread (HttpsTransport) does so instead.
  virtual std::shared_ptr<StreamedBody> Stream(const apiserver::Request& request,
                                               apiserver::Response& head);
  // True when requests reach the handlers in this process: bodies then travel
  // as documents (Request::object, Response::object), never as bytes.
  virtual bool InProcess() const { return false; }
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  int64_t limit = 0;
  int64_t timeout_seconds = 0;  // Watch only.
};

struct WatchEvent {
  std::string type;           // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  boost::json::value object;  // Null when `shared` holds it.
  // In process, the object as the API server decoded it once for every
  // in-process watch: shared, read-only, and without metadata.managedFields.
  std::shared_ptr<const boost::json::value> shared;
  const boost::json::value& Object() const { return shared ? *shared : object; }
};

class WatchStream {
 public:
  virtual ~WatchStream() = default;
  // Events received by `deadline` (empty at the deadline). An error once the
  // stream has ended: Compacted for 410 (re-list), Cancelled, Unavailable.
  virtual Result<std::vector<WatchEvent>> Next(std::chrono::steady_clock::time_point deadline) = 0;
  // Ends the stream from any thread: a blocked Next returns Cancelled promptly.
  virtual void Cancel() = 0;
};

enum class PatchType { kJson, kMerge, kStrategic, kApply };

struct DeleteOptions {
  std::string propagation_policy;  // "", Background, Foreground, Orphan.
  std::optional<int64_t> grace_period_seconds;
  std::string precondition_uid;
};

class Client {
 public:
  explicit Client(std::shared_ptr<Transport> transport, std::string user_agent = "kiso");

  // The object, or one of its subresources ("scale", "status").
  Result<boost::json::value> Get(const api::ResourceType& type, std::string_view ns,
                                 std::string_view name, std::string_view subresource = "");
  // The list object (items, metadata.resourceVersion).
  Result<boost::json::value> List(const api::ResourceType& type, std::string_view ns,
                                  const ListOptions& options = {});
  Result<std::unique_ptr<WatchStream>> Watch(const api::ResourceType& type, std::string_view ns,
                                             const ListOptions& options);
  Result<boost::json::value> Create(const api::ResourceType& type, std::string_view ns,
                                    const boost::json::value& obj);
  // PUT of the whole object (or of a subresource: "status", "finalize").
  Result<boost::json::value> Update(const api::ResourceType& type, std::string_view ns,
                                    const boost::json::value& obj,
                                    std::string_view subresource = "");
  Result<boost::json::value> Patch(const api::ResourceType& type, std::string_view ns,
                                   std::string_view name, PatchType patch_type,
                                   const boost::json::value& patch,
                                   std::string_view subresource = "");
  // POST to a subresource (pods/binding, pods/eviction…); the response object.
  Result<boost::json::value> CreateSubresource(const api::ResourceType& type, std::string_view ns,
                                               std::string_view name, std::string_view subresource,
                                               const boost::json::value& body);
  Status Delete(const api::ResourceType& type, std::string_view ns, std::string_view name,
                const DeleteOptions& options = {});
  Status DeleteCollection(const api::ResourceType& type, std::string_view ns,
                          const ListOptions& options = {});

  // GET of any path (an aggregated API's: custom.metrics.k8s.io…), with
  // `query` parameters; the answer decoded as JSON.
  Result<boost::json::value> GetPath(
      std::string_view path, const std::vector<std::pair<std::string, std::string>>& query = {});

  // The path of a collection or object: /apis/apps/v1/namespaces/ns/deployments[/name[/sub]].
  static std::string Path(const api::ResourceType& type, std::string_view ns,
                          std::string_view name = "", std::string_view subresource = "");

 private:
  apiserver::Request NewRequest(std::string method, std::string path) const;
  // The body as bytes, or in process as the document itself.
  void SetBody(apiserver::Request& r, const boost::json::value& body) const;
  Result<boost::json::value> Decode(const apiserver::Response& response) const;

  std::shared_ptr<Transport> transport_;
  std::string user_agent_;
};

// Maps an API error response (a Status body) to a kiso Status.
Status StatusFromResponse(int http_code, std::string_view body);

}  // namespace kiso::client
