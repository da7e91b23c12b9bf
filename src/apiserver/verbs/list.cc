// LIST: served from the watch cache. Without resourceVersion the list is
// consistent (the cache first catches up with the store's current revision);
// resourceVersion=0 takes the cache as it is. limit/continue page through one
// snapshot: later pages are read from the store at the first page's revision,
// so a compacted revision gives 410 Expired, as upstream.
#include <fmt/format.h>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/verbs/handlers.h"
#include "apiserver/verbs/list_filter.h"

namespace kiso::apiserver {

namespace json = boost::json;
namespace base64 = boost::beast::detail::base64;

namespace {

std::string EncodeContinue(store::Revision rv, const std::string& last_key) {
  std::string raw = json::serialize(json::object{
      {"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", last_key + std::string(1, '\0')}});
  std::string out(base64::encoded_size(raw.size()), '\0');
  out.resize(base64::encode(out.data(), raw.data(), raw.size()));
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

struct ContinueToken {
  store::Revision rv = 0;
  std::string start;
};

api::ApiOr<ContinueToken> DecodeContinue(std::string_view token, const std::string& prefix) {
  std::string in(token);
  for (char& c : in) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (in.size() % 4 != 0) in += '=';
  std::string raw(base64::decoded_size(in.size()), '\0');
  auto [written, read] = base64::decode(raw.data(), in.data(), in.size());
  (void)read;
  raw.resize(written);
  auto v = api::ParseJson(raw);
  const auto* rv = v.ok() ? api::Find(*v, {"rv"}) : nullptr;
  std::string_view start = v.ok() ? api::GetString(*v, {"start"}) : "";
  if (!rv || !rv->is_int64() || !std::string(start).starts_with(prefix)) {
    return api::BadRequest("continue key is not valid: incorrect encoded start resourceVersion");
  }
  return ContinueToken{rv->get_int64(), std::string(start)};
}

std::string ListKind(const api::ResourceType& type) { return type.kind + "List"; }

}  // namespace

Response HandleList(const Context& ctx, const Target& t, const Request& req) {
  auto filter = ListFilter::FromRequest(t, req);
  if (!filter.ok()) return ErrorResponse(filter.error());
  int64_t limit = 0;
  if (auto l = req.Query("limit")) {
    try {
      limit = std::stoll(std::string(*l));
    } catch (...) {
      return ErrorResponse(api::BadRequest(fmt::format("invalid limit {:?}", *l)));
    }
  }
  std::vector<ObjectPtr> items;
  store::Revision revision = 0;
  std::string continue_token;
  int64_t remaining = 0;

  auto token_text = req.Query("continue");
  if (token_text && !token_text->empty()) {
    auto token = DecodeContinue(*token_text, filter->prefix);
    if (!token.ok()) return ErrorResponse(token.error());
    revision = token->rv;
    std::string start = token->start;
    std::string end = store::PrefixEnd(filter->prefix);
    while (true) {
      store::RangeOptions opts;
      opts.revision = revision;
      opts.limit = limit > 0 ? std::max<int64_t>(limit, 100) : 0;
      auto page = ctx.store->Range(store::KeyRange::Between(start, end), opts);
      if (!page.ok()) {
        if (page.status().code() == Code::kCompacted) {
          return ErrorResponse(api::Expired(
              "The provided continue parameter is too old to display a consistent list result. "
              "You can start a new list without the continue parameter, or use the continue "
              "token in this response to retrieve the remainder of the results. Continuing with "
              "the provided token results in an inconsistent list - objects that were created, "
              "modified, or deleted between the time the first chunk was returned and now may "
              "show up in the list."));
        }
        return ErrorResponse(api::FromStatus(page.status()));
      }
      for (const auto& kv : page->kvs) {
        auto obj = MakeCachedObject(kv.key, kv.value, kv.mod_revision);
        if (!obj.ok() || !filter->Matches(**obj)) continue;
        if (limit > 0 && static_cast<int64_t>(items.size()) == limit) {
          continue_token = EncodeContinue(revision, items.back()->key);
          remaining = 1;
          break;
        }
        items.push_back(*obj);
      }
      if (!continue_token.empty() || !page->more || page->kvs.empty()) break;
      start = page->kvs.back().key + std::string(1, '\0');
    }
  } else {
    auto rv = req.Query("resourceVersion");
    store::Revision want = 0;
    if (!rv || rv->empty()) {
      auto current = ctx.store->CurrentRevision();
      if (!current.ok()) return ErrorResponse(api::FromStatus(current.status()));
      want = *current;
    } else if (*rv != "0") {
      try {
        want = std::stoll(std::string(*rv));
      } catch (...) {
        return ErrorResponse(api::BadRequest(fmt::format("invalid resourceVersion {:?}", *rv)));
      }
    }
    if (want > 0 &&
        !ctx.cache->WaitFor(want, std::chrono::steady_clock::now() + std::chrono::seconds(3))) {
      api::ApiError e = api::ServiceUnavailable(
          fmt::format("Too large resource version: {}, current: {}", want, ctx.cache->revision()));
      e.retry_after_seconds = 1;
      return ErrorResponse(e);
    }
    auto snap = ctx.cache->List(filter->prefix);
    revision = snap.revision;
    items.reserve(limit > 0 ? std::min(snap.objects.size(), static_cast<size_t>(limit))
                            : snap.objects.size());
    for (auto& obj : snap.objects) {
      if (!filter->Matches(*obj)) continue;
      if (limit > 0 && static_cast<int64_t>(items.size()) == limit) {
        ++remaining;
        continue;
      }
      items.push_back(std::move(obj));  // The snapshot is this request's own.
    }
    if (remaining > 0) continue_token = EncodeContinue(revision, items.back()->key);
  }

  if (WantsTable(req)) {
    return JsonResponse(
        200, RenderTable(*t.type, items, req, std::to_string(revision), continue_token, true));
  }
  std::string body =
      fmt::format(R"({{"kind":"{}","apiVersion":"{}","metadata":{{"resourceVersion":"{}")",
                  ListKind(*t.type), t.type->GroupVersion(), revision);
  if (!continue_token.empty()) {
    body += fmt::format(R"(,"continue":"{}")", continue_token);
    if (!token_text) body += fmt::format(R"(,"remainingItemCount":{})", remaining);
  }
  body += R"(},"items":[)";
  // The items as the cache holds them, shared with the response rather than
  // copied into the body.
  auto parts = std::make_shared<SharedParts>();
  parts->parts.reserve(items.size());
  for (auto& obj : items) {
    const std::string* json = &obj->json;
    parts->parts.emplace_back(std::move(obj), json);  // Owns its object, points at its JSON.
  }
  parts->separator = ",";
  parts->tail = "]}\n";
  Response res;
  res.body = std::move(body);
  res.parts = std::move(parts);
  return res;
}

}  // namespace kiso::apiserver
