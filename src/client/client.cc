#include "client/client.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "api/object.h"

namespace kiso::client {

namespace json = boost::json;
using apiserver::Request;
using apiserver::Response;

Status StatusFromResponse(int http_code, std::string_view body) {
  auto parsed = api::ParseJson(body);
  std::string message =
      parsed.ok() ? std::string(api::GetString(*parsed, {"message"})) : std::string(body);
  std::string reason = parsed.ok() ? std::string(api::GetString(*parsed, {"reason"})) : "";
  if (message.empty()) message = fmt::format("HTTP {}", http_code);
  Code code = Code::kInternal;
  switch (http_code) {
    case 400:
    case 422:
      code = Code::kInvalidArgument;
      break;
    case 401:
      code = Code::kUnauthenticated;
      break;
    case 403:
      code = Code::kPermissionDenied;
      break;
    case 404:
      code = Code::kNotFound;
      break;
    case 409:
      code = reason == "AlreadyExists" ? Code::kAlreadyExists : Code::kConflict;
      break;
    case 410:
      code = Code::kCompacted;
      break;
    case 429:
    case 503:
      code = Code::kUnavailable;
      break;
    case 504:
      code = Code::kDeadlineExceeded;
      break;
    default:
      break;
  }
  return Status(code, message);
}

Client::Client(std::shared_ptr<Transport> transport, std::string user_agent)
    : transport_(std::move(transport)), user_agent_(std::move(user_agent)) {}

std::string Client::Path(const api::ResourceType& type, std::string_view ns, std::string_view name,
                         std::string_view subresource) {
  std::string path =
      type.group.empty() ? "/api/" + type.version : "/apis/" + type.group + "/" + type.version;
  if (type.namespaced && !ns.empty()) path += fmt::format("/namespaces/{}", ns);
  path += "/" + type.plural;
  if (!name.empty()) path += fmt::format("/{}", name);
  if (!subresource.empty()) path += fmt::format("/{}", subresource);
  return path;
}

Request Client::NewRequest(std::string method, std::string path) const {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers.emplace("user-agent", user_agent_);
  r.headers.emplace("accept", "application/json");
  r.headers.emplace("content-type", "application/json");
  return r;
}

void Client::SetBody(Request& r, const json::value& body) const {
  if (transport_->InProcess()) {
    r.object = std::make_shared<const json::value>(body);
  } else {
    r.body = json::serialize(body);
  }
}

Result<json::value> Client::Decode(const Response& response) const {
  if (response.status >= 300) return StatusFromResponse(response.status, response.body);
  if (response.object) return std::move(*response.object);  // In process: already decoded.
  auto parsed = api::ParseJson(response.body);
  if (!parsed.ok())
    return MakeStatus(Code::kInternal, "decode response: {}", parsed.status().message());
  return std::move(*parsed);
}

namespace {

void AddListOptions(Request& r, const ListOptions& o) {
  if (!o.label_selector.empty()) r.query.emplace("labelSelector", o.label_selector);
  if (!o.field_selector.empty()) r.query.emplace("fieldSelector", o.field_selector);
  if (!o.resource_version.empty()) r.query.emplace("resourceVersion", o.resource_version);
  if (o.limit > 0) r.query.emplace("limit", std::to_string(o.limit));
}

// What an ERROR event's Status object says, as a Status.
Status ErrorEventStatus(const json::value& object) {
  const auto* code = api::Find(object, {"code"});
  return StatusFromResponse(code && code->is_int64() ? static_cast<int>(code->get_int64()) : 500,
                            json::serialize(object));
}

// Takes the complete lines at the front of `buffer` as watch events, into
// `out`. False once an ERROR event has ended the stream (`error` says why);
// what follows it is dropped.
bool TakeEventLines(std::string& buffer, std::vector<WatchEvent>& out, Status& error) {
  size_t start = 0;
  bool open = true;
  for (size_t end; open && (end = buffer.find('\n', start)) != std::string::npos; start = end + 1) {
    auto parsed = api::ParseJson(std::string_view(buffer).substr(start, end - start));
    if (!parsed.ok() || !parsed->is_object()) continue;
    WatchEvent e;
    e.type = api::GetString(*parsed, {"type"});
    // The event is ours: its object moves out rather than being copied.
    if (auto* o = parsed->get_object().if_contains("object")) e.object = std::move(*o);
    if (e.type == "ERROR") {
      error = ErrorEventStatus(e.object);
      open = false;
      break;
    }
    out.push_back(std::move(e));
  }
  buffer.erase(0, open ? start : buffer.size());
  return open;
}

// A watch answered in process (Response::events): its events are pulled by
// the thread that reads them (an informer's), so a watch holds no thread of
// its own and events wait in the watch cache, not in a copy here.
class PulledWatch : public WatchStream {
 public:
  explicit PulledWatch(std::shared_ptr<apiserver::EventStream> events)
      : events_(std::move(events)) {
    events_->Start([this] {
      std::lock_guard lock(mu_);
      woken_ = true;
      cv_.notify_all();
    });
  }
  // Owner's thread, no Next running: the stream stops calling wake before it goes.
  ~PulledWatch() override { events_->Cancel(); }

  // Events handed over decoded (Request::decoded_events); false once an
  // ERROR has ended the stream (error_ says why).
  bool TakeDecoded(std::vector<apiserver::EventStream::DecodedEvent>& events,
                   std::vector<WatchEvent>& out) {
    for (auto& d : events) {
      if (!d.object) continue;
      if (d.type == "ERROR") {
        error_ = ErrorEventStatus(*d.object);
        return false;
      }
      WatchEvent e;
      e.type = std::move(d.type);
      e.shared = std::move(d.object);
      out.push_back(std::move(e));
    }
    return true;
  }

  void Cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

  Result<std::vector<WatchEvent>> Next(std::chrono::steady_clock::time_point deadline) override {
    // A reader's chunk: events are parsed as soon as they are pulled.
    constexpr size_t kChunk = size_t{1} << 20;
    std::vector<WatchEvent> out;
    while (!ended_) {
      {
        std::lock_guard lock(mu_);
        if (cancelled_) return Status(Code::kCancelled, "watch cancelled");
        woken_ = false;  // A wake from here on is for what Pull has not seen.
      }
      apiserver::EventStream::Pulled p = events_->Pull(kChunk);
      buffer_ += p.data;
      if (!TakeEventLines(buffer_, out, error_) || !TakeDecoded(p.events, out) || p.done)
        ended_ = true;
      if (!out.empty()) return out;
      if (ended_ || p.next == std::chrono::steady_clock::time_point::min()) continue;
      std::unique_lock lock(mu_);
      auto until = std::min(p.next, deadline);
      cv_.wait_until(lock, until, [&] { return woken_ || cancelled_; });
      if (!woken_ && !cancelled_ && std::chrono::steady_clock::now() >= deadline) return out;
    }
    return error_.ok() ? Status(Code::kCancelled, "watch ended") : error_;
  }

 private:
  std::shared_ptr<apiserver::EventStream> events_;
  std::string buffer_;  // A line not yet complete (the reader's thread only).
  bool ended_ = false;  // Likewise.
  Status error_;        // Likewise: why the stream ended, if it said.
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool cancelled_ = false;
};

// A Response::stream run on a thread of its own, its bytes handed to the
// reader: for transports that answer a stream by calling its writer (in
// process, a relayed aggregated API).
class ThreadedBody : public StreamedBody {
 public:
  explicit ThreadedBody(std::function<void(apiserver::StreamWriter&)> stream) {
    thread_ = std::thread([this, stream = std::move(stream)] {
      Writer writer(this);
      stream(writer);
      std::lock_guard lock(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~ThreadedBody() override {
    Cancel();
    if (thread_.joinable()) thread_.join();
  }
  ThreadedBody(const ThreadedBody&) = delete;
  ThreadedBody& operator=(const ThreadedBody&) = delete;

  void Cancel() override {
    std::function<void()> cancel;
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      cancel = cancel_;
      cv_.notify_all();
    }
    if (cancel) cancel();  // Wakes the stream now rather than at its next check.
  }

  bool Read(std::string& out, std::chrono::steady_clock::time_point deadline) override {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return !received_.empty() || ended_ || cancelled_; });
    out += received_;
    received_.clear();
    return !ended_ && !cancelled_;
  }

 private:
  class Writer : public apiserver::StreamWriter {
   public:
    explicit Writer(ThreadedBody* b) : b_(b) {}
    bool Write(std::string_view data) override {
      std::lock_guard lock(b_->mu_);
      if (b_->cancelled_) return false;
      b_->received_ += data;
      b_->cv_.notify_all();
      return true;
    }
    bool Stopping() const override {
      std::lock_guard lock(b_->mu_);
      return b_->cancelled_;
    }
    void OnCancel(const std::function<void()>& cancel) override {
      bool now;
      {
        std::lock_guard lock(b_->mu_);
        b_->cancel_ = cancel;
        now = b_->cancelled_;
      }
      if (now) cancel();
    }

   private:
    ThreadedBody* b_;
  };

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string received_;  // Bytes written and not yet read.
  bool ended_ = false;
  bool cancelled_ = false;
  std::function<void()> cancel_;
  std::thread thread_;
};

// A watch streamed as bytes (Transport::Stream), read on the thread that
// calls Next (an informer's): over HTTPS straight from its connection, no
// thread of its own.
class ReadWatch : public WatchStream {
 public:
  explicit ReadWatch(std::shared_ptr<StreamedBody> body) : body_(std::move(body)) {}

  void Cancel() override { body_->Cancel(); }

  Result<std::vector<WatchEvent>> Next(std::chrono::steady_clock::time_point deadline) override {
    std::vector<WatchEvent> out;
    while (true) {
      if (!TakeEventLines(buffer_, out, error_)) ended_ = true;
      if (!out.empty()) return out;
      if (ended_) return error_.ok() ? Status(Code::kCancelled, "watch ended") : error_;
      const size_t had = buffer_.size();
      if (!body_->Read(buffer_, deadline)) ended_ = true;  // What came with the end is taken first.
      if (!ended_ && buffer_.size() == had) return out;    // The deadline: nothing came.
    }
  }

 private:
  std::shared_ptr<StreamedBody> body_;
  std::string buffer_;  // A line not yet complete.
  bool ended_ = false;
  Status error_;  // Why the stream ended, if it said.
};

}  // namespace

std::shared_ptr<StreamedBody> Transport::Stream(const apiserver::Request& request,
                                                apiserver::Response& head) {
  head = RoundTrip(request);
  if (!head.stream) return nullptr;
  return std::make_shared<ThreadedBody>(std::exchange(head.stream, nullptr));
}

Result<json::value> Client::Get(const api::ResourceType& type, std::string_view ns,
                                std::string_view name, std::string_view subresource) {
  return Decode(transport_->RoundTrip(NewRequest("GET", Path(type, ns, name, subresource))));
}

Result<json::value> Client::GetPath(std::string_view path,
                                    const std::vector<std::pair<std::string, std::string>>& query) {
  Request r = NewRequest("GET", std::string(path));
  for (const auto& [k, v] : query) r.query.emplace(k, v);
  return Decode(transport_->RoundTrip(r));
}

Result<json::value> Client::List(const api::ResourceType& type, std::string_view ns,
                                 const ListOptions& options) {
  Request r = NewRequest("GET", Path(type, ns));
  AddListOptions(r, options);
  return Decode(transport_->RoundTrip(r));
}

Result<std::unique_ptr<WatchStream>> Client::Watch(const api::ResourceType& type,
                                                   std::string_view ns,
                                                   const ListOptions& options) {
  Request r = NewRequest("GET", Path(type, ns));
  AddListOptions(r, options);
  r.query.emplace("watch", "true");
  r.query.emplace("allowWatchBookmarks", "true");
  r.decoded_events = transport_->InProcess();
  if (options.timeout_seconds > 0)
    r.query.emplace("timeoutSeconds", std::to_string(options.timeout_seconds));
  Response head;
  auto body = transport_->Stream(r, head);
  if (body) return std::unique_ptr<WatchStream>(new ReadWatch(std::move(body)));
  if (head.events) return std::unique_ptr<WatchStream>(new PulledWatch(std::move(head.events)));
  if (head.status >= 300) return StatusFromResponse(head.status, head.body);
  return Status(Code::kInternal, "watch: the server did not stream");
}

Result<json::value> Client::Create(const api::ResourceType& type, std::string_view ns,
                                   const json::value& obj) {
  Request r = NewRequest("POST", Path(type, ns));
  SetBody(r, obj);
  return Decode(transport_->RoundTrip(r));
}

Result<json::value> Client::CreateSubresource(const api::ResourceType& type, std::string_view ns,
                                              std::string_view name, std::string_view subresource,
                                              const json::value& body) {
  Request r = NewRequest("POST", Path(type, ns, name, subresource));
  SetBody(r, body);
  return Decode(transport_->RoundTrip(r));
}

Result<json::value> Client::Update(const api::ResourceType& type, std::string_view ns,
                                   const json::value& obj, std::string_view subresource) {
  Request r =
      NewRequest("PUT", Path(type, ns, api::GetString(obj, {"metadata", "name"}), subresource));
  SetBody(r, obj);
  return Decode(transport_->RoundTrip(r));
}

Result<json::value> Client::Patch(const api::ResourceType& type, std::string_view ns,
                                  std::string_view name, PatchType patch_type,
                                  const json::value& patch, std::string_view subresource) {
  Request r = NewRequest("PATCH", Path(type, ns, name, subresource));
  const char* content_type = "application/merge-patch+json";
  if (patch_type == PatchType::kJson) content_type = "application/json-patch+json";
  if (patch_type == PatchType::kStrategic) content_type = "application/strategic-merge-patch+json";
  if (patch_type == PatchType::kApply) {
    content_type = "application/apply-patch+yaml";
    r.query.emplace("fieldManager", user_agent_);
  }
  r.headers["content-type"] = content_type;
  SetBody(r, patch);
  return Decode(transport_->RoundTrip(r));
}

namespace {

std::string DeleteBody(const DeleteOptions& options) {
  json::object body{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (!options.propagation_policy.empty()) body["propagationPolicy"] = options.propagation_policy;
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (!options.precondition_uid.empty())
    body["preconditions"] = json::object{{"uid", options.precondition_uid}};
  return json::serialize(body);
}

}  // namespace

Status Client::Delete(const api::ResourceType& type, std::string_view ns, std::string_view name,
                      const DeleteOptions& options) {
  Request r = NewRequest("DELETE", Path(type, ns, name));
  r.body = DeleteBody(options);
  Response res = transport_->RoundTrip(r);
  if (res.status >= 300) return StatusFromResponse(res.status, res.body);
  return Status::Ok();
}

Status Client::DeleteCollection(const api::ResourceType& type, std::string_view ns,
                                const ListOptions& options) {
  Request r = NewRequest("DELETE", Path(type, ns));
  AddListOptions(r, options);
  Response res = transport_->RoundTrip(r);
  if (res.status >= 300) return StatusFromResponse(res.status, res.body);
  return Status::Ok();
}

}  // namespace kiso::client
