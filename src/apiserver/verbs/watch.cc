// WATCH: one JSON event per line over a chunked response, from the watch
// cache. resourceVersion absent or "0": synthetic ADDED events for the current
// state first. Otherwise replay from the window, or a 410 Expired ERROR event
// when it no longer reaches back. Selectors turn an object entering or leaving
// the selection into ADDED/DELETED, as upstream's cacher does.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <vector>

#include "api/object.h"
#include "api/protobuf.h"
#include "apiserver/metrics.h"
#include "apiserver/verbs/handlers.h"
#include "apiserver/verbs/list_filter.h"
#include "common/random.h"

namespace kiso::apiserver {

namespace {

// Appends one event to `out` as a JSON line, or as a length-delimited
// protobuf WatchEvent (for a client that accepts only protobuf). Written in
// place: an event goes to every watch of its object, one copy each.
void AppendEvent(std::string& out, std::string_view type, std::string_view object_json,
                 bool protobuf = false) {
  if (protobuf) {
    auto obj = api::ParseJson(object_json);
    auto event = obj.ok() ? api::EncodeProtobufWatchEvent(type, *obj)
                          : api::ApiOr<std::string>(api::InternalError("stored object"));
    if (event.ok()) out += *event;
    return;
  }
  out.reserve(out.size() + object_json.size() + type.size() + 24);
  out += R"({"type":")";
  out += type;
  out += R"(","object":)";
  out += object_json;
  out += "}\n";
}

constexpr auto kBookmarkEvery = std::chrono::seconds(10);

// One watch's events, pulled by the HTTP server as its reader takes them:
// the initial state first (when asked), then what the cache hands over,
// bookmarks every 10 s when allowed, until the timeout.
class WatchEvents : public EventStream {
 public:
  struct Setup {
    const api::ResourceType* type = nullptr;
    ListFilter filter;
    std::string exact_key;
    WatchCache::Snapshot snapshot;
    std::unique_ptr<CacheWatcher> watcher;  // Null with `expired`.
    std::string expired;
    store::Revision last = 0;
    std::chrono::steady_clock::time_point end;
    bool bookmarks = false;
    bool protobuf = false;
    bool decoded = false;  // Request::decoded_events: Pulled::events, not lines.
    std::shared_ptr<const Request> table_request;  // Set: each object as a Table row.
    Metrics* metrics = nullptr;
  };
  explicit WatchEvents(Setup setup)
      : s_(std::move(setup)),
        next_bookmark_(std::chrono::steady_clock::now() + kBookmarkEvery),
        gauge_(s_.metrics) {
    // Only what the watch sends is kept: a watch of one object among
    // thousands holds one pointer, not thousands, until it is sent.
    auto& objects = s_.snapshot.objects;
    std::erase_if(objects, [this](const ObjectPtr& obj) { return !Matches(obj); });
    objects.shrink_to_fit();
  }

  void Start(std::function<void()> wake) override {
    if (s_.watcher) s_.watcher->SetNotify(std::move(wake));
  }

  void Cancel() override {
    if (s_.watcher) s_.watcher->SetNotify(nullptr);
    done_ = true;
  }

  Pulled Pull(size_t max_bytes) override {
    Pulled p;
    if (done_) {
      p.done = true;
      return p;
    }
    if (!s_.expired.empty()) {
      Emit(p, "ERROR", api::Expired(s_.expired));
      p.done = done_ = true;
      return p;
    }
    // The initial state, a part at a time as the reader takes it.
    while (next_initial_ < s_.snapshot.objects.size() && p.data.size() < max_bytes &&
           p.events.size() * kDecodedEventBytes < max_bytes) {
      Emit(p, "ADDED", s_.snapshot.objects[next_initial_++]);
    }
    if (next_initial_ < s_.snapshot.objects.size()) {
      p.next = std::chrono::steady_clock::time_point::min();  // More at once.
      return p;
    }
    std::vector<ObjectPtr>().swap(s_.snapshot.objects);  // Sent: its memory goes.
    auto events = s_.watcher->Next(std::chrono::steady_clock::time_point::min());
    if (!events.ok()) {
      done_ = p.done = true;
      if (events.status().code() == Code::kCancelled) return p;
      api::ApiError e = events.status().code() == Code::kResourceExhausted
                            ? api::Expired(events.status().message())
                            : api::InternalError(events.status().message());
      Emit(p, "ERROR", e);
      return p;
    }
    for (const auto& ev : *events) {
      s_.last = ev->revision;
      bool now_matches = ev->type != CacheEvent::Type::kDeleted && Matches(ev->object);
      bool was_matching = ev->prev && Matches(ev->prev);
      if (ev->type == CacheEvent::Type::kDeleted) {
        if (Matches(ev->object) || was_matching) Emit(p, "DELETED", ev->object);
      } else if (now_matches && was_matching) {
        Emit(p, "MODIFIED", ev->object);
      } else if (now_matches) {
        Emit(p, "ADDED", ev->object);
      } else if (was_matching) {
        Emit(p, "DELETED", ev->object);
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (s_.bookmarks && now >= next_bookmark_) {
      std::string bookmark =
          fmt::format(R"({{"kind":"{}","apiVersion":"{}","metadata":{{"resourceVersion":"{}"}}}})",
                      s_.type->kind, s_.type->GroupVersion(), s_.last);
      EmitText(p, "BOOKMARK", bookmark);
      next_bookmark_ = now + kBookmarkEvery;
    }
    if (now >= s_.end) {
      done_ = p.done = true;
      return p;
    }
    p.next = s_.bookmarks ? std::min(s_.end, next_bookmark_) : s_.end;
    return p;
  }

 private:
  bool Matches(const ObjectPtr& obj) const {
    return obj && (s_.exact_key.empty() || obj->key == s_.exact_key) && s_.filter.Matches(*obj);
  }
  // What a decoded event counts for against Pull's max_bytes (a pointer: the
  // reader takes a batch of about a thousand at a time).
  static constexpr size_t kDecodedEventBytes = 1024;

  void Emit(Pulled& p, std::string_view type, const ObjectPtr& obj) const {
    if (s_.decoded) {
      p.events.push_back({std::string(type), obj->Decoded()});
    } else if (s_.table_request) {
      AppendEvent(p.data, type, RenderTable(*s_.type, {obj}, *s_.table_request, "", "", false),
                  s_.protobuf);
    } else {
      AppendEvent(p.data, type, obj->json, s_.protobuf);
    }
  }
  void Emit(Pulled& p, std::string_view type, const api::ApiError& error) const {
    std::string body = error.ToJson();
    body.pop_back();  // AppendEvent adds the newline.
    EmitText(p, type, body);
  }
  // An event whose object the server makes here (an error, a bookmark).
  void EmitText(Pulled& p, std::string_view type, std::string_view object_json) const {
    if (s_.decoded) {
      auto parsed = api::ParseJson(object_json);
      p.events.push_back({std::string(type), std::make_shared<const boost::json::value>(
                                                 parsed.ok() ? std::move(*parsed) : nullptr)});
    } else {
      AppendEvent(p.data, type, object_json, s_.protobuf);
    }
  }

  Setup s_;
  size_t next_initial_ = 0;
  std::chrono::steady_clock::time_point next_bookmark_;
  bool done_ = false;
  WatchGauge gauge_;
};

}  // namespace

Response HandleWatch(const Context& ctx, const Target& t, const Request& req) {
  auto filter = ListFilter::FromRequest(t, req);
  if (!filter.ok()) return ErrorResponse(filter.error());
  if (!t.name.empty()) {
    // A watch on one object (…/pods/name?watch=1): the same as fieldSelector=metadata.name=name.
    filter->prefix = t.type->StoreKey(t.ns, t.name);
  }
  std::string exact_key = t.name.empty() ? "" : t.type->StoreKey(t.ns, t.name);
  auto rv = req.Query("resourceVersion");
  store::Revision after = 0;
  bool initial = !rv || rv->empty() || *rv == "0";
  if (!initial) {
    try {
      after = std::stoll(std::string(*rv));
    } catch (...) {
      return ErrorResponse(api::BadRequest(fmt::format("invalid resourceVersion {:?}", *rv)));
    }
  }
  int64_t timeout_seconds = 0;
  if (auto ts = req.Query("timeoutSeconds")) {
    try {
      timeout_seconds = std::stoll(std::string(*ts));
    } catch (...) {
      return ErrorResponse(api::BadRequest(fmt::format("invalid timeoutSeconds {:?}", *ts)));
    }
  }
  if (timeout_seconds <= 0) {
    // kube-apiserver: a random duration in [minRequestTimeout, 2×minRequestTimeout), 30 min.
    timeout_seconds = 1800 + static_cast<int64_t>(RandomBelow(1800));
  }
  bool bookmarks = req.QueryBool("allowWatchBookmarks");
  bool table = WantsTable(req);
  bool protobuf = WantsProtobufOnly(req) && !table;
  bool decoded = req.decoded_events && !table && !protobuf;
  // An in-process watch of every object under its prefix (an informer's): the
  // cache keeps their current versions decoded for it. A narrower one takes
  // those copies too where an informer's watch has them held, else decodes.
  bool hold = decoded && filter->SelectsAll() && exact_key.empty();

  WatchCache::Snapshot snapshot;
  std::unique_ptr<CacheWatcher> watcher;
  std::string expired;
  if (initial) {
    auto w = ctx.cache->ListAndWatch(filter->prefix, &snapshot, hold);
    if (!w.ok()) return ErrorResponse(api::FromStatus(w.status()));
    watcher = std::move(*w);
  } else {
    auto w = ctx.cache->Watch(filter->prefix, after, hold);
    if (!w.ok()) {
      if (w.status().code() != Code::kCompacted) return ErrorResponse(api::FromStatus(w.status()));
      expired = w.status().message();
    } else {
      watcher = std::move(*w);
    }
  }

  Response res;
  res.content_type = protobuf ? std::string(api::kProtobufMediaType) + ";stream=watch"
                              : std::string("application/json");
  WatchEvents::Setup setup;
  setup.type = t.type;
  setup.filter = std::move(*filter);
  setup.exact_key = std::move(exact_key);
  setup.snapshot = std::move(snapshot);
  setup.watcher = std::move(watcher);
  setup.expired = std::move(expired);
  setup.last = initial ? setup.snapshot.revision : after;
  setup.end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  setup.bookmarks = bookmarks;
  setup.protobuf = protobuf;
  setup.decoded = decoded;
  if (table) setup.table_request = std::make_shared<const Request>(req);
  setup.metrics = ctx.metrics;
  res.events = std::make_shared<WatchEvents>(std::move(setup));
  return res;
}

}  // namespace kiso::apiserver
