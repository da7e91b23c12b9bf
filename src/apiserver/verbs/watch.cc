// WATCH: one JSON event per line over a chunked response, from the watch
// cache. resourceVersion absent or "0": synthetic ADDED events for the current
// state first. Otherwise replay from the window, or a 410 Expired ERROR event
// when it no longer reaches back. Selectors turn an object entering or leaving
// the selection into ADDED/DELETED, as upstream's cacher does.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <random>

#include "api/object.h"
#include "api/protobuf.h"
#include "apiserver/metrics.h"
#include "apiserver/verbs/handlers.h"
#include "apiserver/verbs/list_filter.h"

namespace kiso::apiserver {

namespace {

// One event as a JSON line, or as a length-delimited protobuf WatchEvent
// (for a client that accepts only protobuf).
std::string EventLine(std::string_view type, std::string_view object_json, bool protobuf = false) {
  if (protobuf) {
    auto obj = api::ParseJson(object_json);
    auto event = obj.ok() ? api::EncodeProtobufWatchEvent(type, *obj)
                          : api::ApiOr<std::string>(api::InternalError("stored object"));
    return event.ok() ? std::move(*event) : "";
  }
  std::string line;
  line.reserve(object_json.size() + 32);
  line += R"({"type":")";
  line += type;
  line += R"(","object":)";
  line += object_json;
  line += "}\n";
  return line;
}

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
    thread_local std::mt19937 rng(std::random_device{}());
    timeout_seconds = 1800 + static_cast<int64_t>(rng() % 1800);
  }
  bool bookmarks = req.QueryBool("allowWatchBookmarks");
  bool table = WantsTable(req);
  bool protobuf = WantsProtobufOnly(req) && !table;

  WatchCache::Snapshot snapshot;
  std::unique_ptr<CacheWatcher> watcher;
  std::string expired;
  if (initial) {
    auto w = ctx.cache->ListAndWatch(filter->prefix, &snapshot);
    if (!w.ok()) return ErrorResponse(api::FromStatus(w.status()));
    watcher = std::move(*w);
  } else {
    auto w = ctx.cache->Watch(filter->prefix, after);
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
  Metrics* metrics = ctx.metrics;
  const api::ResourceType* type = t.type;
  res.stream = [=, snapshot = std::move(snapshot),
                watcher = std::shared_ptr<CacheWatcher>(std::move(watcher)),
                filter = *filter](StreamWriter& out) {
    if (!expired.empty()) {
      std::string body = api::Expired(expired).ToJson();
      body.pop_back();  // EventLine adds the newline.
      out.Write(EventLine("ERROR", body, protobuf));
      return;
    }
    WatchGauge gauge(metrics);
    out.OnCancel([watcher] { watcher->Cancel(); });
    auto render = [&](const ObjectPtr& obj) {
      return table ? RenderTable(*type, {obj}, req, "", "", false) : obj->json;
    };
    auto matches = [&](const ObjectPtr& obj) {
      return obj && (exact_key.empty() || obj->key == exact_key) && filter.Matches(*obj);
    };
    for (const auto& obj : snapshot.objects) {
      if (matches(obj) && !out.Write(EventLine("ADDED", render(obj), protobuf))) return;
    }
    store::Revision last = initial ? snapshot.revision : after;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    auto next_bookmark = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!out.Stopping()) {
      auto now = std::chrono::steady_clock::now();
      if (now >= end) break;
      auto wake = std::min({end, now + std::chrono::seconds(1), next_bookmark});
      auto events = watcher->Next(wake);
      if (!events.ok() && events.status().code() == Code::kCancelled) return;
      if (!events.ok()) {
        api::ApiError e = api::Expired(events.status().message());
        if (events.status().code() != Code::kResourceExhausted) {
          e = api::InternalError(events.status().message());
        }
        std::string body = e.ToJson();
        body.pop_back();
        out.Write(EventLine("ERROR", body, protobuf));
        return;
      }
      std::string batch;
      for (const auto& ev : *events) {
        last = ev->revision;
        bool now_matches = ev->type != CacheEvent::Type::kDeleted && matches(ev->object);
        bool was_matching = ev->prev && matches(ev->prev);
        if (ev->type == CacheEvent::Type::kDeleted) {
          if (matches(ev->object) || was_matching)
            batch += EventLine("DELETED", render(ev->object), protobuf);
        } else if (now_matches && was_matching) {
          batch += EventLine("MODIFIED", render(ev->object), protobuf);
        } else if (now_matches) {
          batch += EventLine("ADDED", render(ev->object), protobuf);
        } else if (was_matching) {
          batch += EventLine("DELETED", render(ev->object), protobuf);
        }
      }
      if (!batch.empty() && !out.Write(batch)) return;
      if (bookmarks && std::chrono::steady_clock::now() >= next_bookmark) {
        std::string bookmark = fmt::format(
            R"({{"kind":"{}","apiVersion":"{}","metadata":{{"resourceVersion":"{}"}}}})",
            type->kind, type->GroupVersion(), last);
        if (!out.Write(EventLine("BOOKMARK", bookmark, protobuf))) return;
        next_bookmark = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      }
    }
  };
  return res;
}

}  // namespace kiso::apiserver
