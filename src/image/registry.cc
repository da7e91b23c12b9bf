#include "image/registry.h"

#include <yaml-cpp/yaml.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cstdio>
#include <filesystem>

#include "common/random.h"

namespace kiso::image {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

Result<RegistryConfig> RegistryConfig::Load(const std::string& path) {
  RegistryConfig config;
  if (!fs::exists(path)) return config;
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (auto mirrors = root["mirrors"]) {
      for (const auto& m : mirrors) {
        auto& endpoints = config.mirrors[m.first.as<std::string>()];
        for (const auto& e : m.second["endpoint"]) endpoints.push_back(e.as<std::string>());
      }
    }
  } catch (const std::exception& e) {
    return MakeStatus(Code::kInvalidArgument, "{}: {}", path, e.what());
  }
  return config;
}

namespace {

constexpr const char* kAccept =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // Lower-case names.
  std::string body;                            // Unless streamed to a file.
};

// One request on a fresh connection; with `sink`, the body goes to the file.
Result<HttpResponse> Fetch(const boost::urls::url& url, const std::string& auth,
                           const std::string& accept, std::FILE* sink,
                           const std::function<void(int64_t, int64_t)>& progress) {
  bool tls = url.scheme() == "https";
  std::string host(url.encoded_host().data(), url.encoded_host().size());
  std::string port(url.has_port() ? std::string(url.port()) : (tls ? "443" : "80"));
  std::string target(url.encoded_target().empty() ? "/" : url.encoded_target());
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    auto addresses = resolver.resolve(host, port);
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(ssl::verify_peer);
    beast::tcp_stream plain(io);
    beast::ssl_stream<beast::tcp_stream> secure(io, ctx);
    auto& lowest = tls ? beast::get_lowest_layer(secure) : plain;
    lowest.expires_after(std::chrono::seconds(30));
    lowest.connect(addresses);
    if (tls) {
      SSL_set_tlsext_host_name(secure.native_handle(), host.c_str());
      secure.set_verify_callback(ssl::host_name_verification(host));
      secure.handshake(ssl::stream_base::client);
    }
    http::request<http::empty_body> req{http::verb::get, target, 11};
    std::string host_header = url.has_port() ? fmt::format("{}:{}", host, port) : host;
    req.set(http::field::host, host_header);
    req.set(http::field::user_agent, "kiso/0.1");
    if (!accept.empty()) req.set(http::field::accept, accept);
    if (!auth.empty()) req.set(http::field::authorization, auth);
    auto run = [&](auto& stream) -> HttpResponse {
      http::write(stream, req);
      beast::flat_buffer buffer;
      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      http::read_header(stream, buffer, parser);
      HttpResponse out;
      out.status = static_cast<int>(parser.get().result_int());
      for (const auto& f : parser.get()) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[name] = std::string(f.value());
      }
      int64_t total = parser.content_length() ? static_cast<int64_t>(*parser.content_length()) : 0;
      int64_t done = 0;
      bool to_file = sink && out.status == 200;
      char chunk[1 << 16];
      while (!parser.is_done()) {
        parser.get().body().data = chunk;
        parser.get().body().size = sizeof chunk;
        beast::error_code ec;
        lowest.expires_after(std::chrono::seconds(60));
        http::read(stream, buffer, parser, ec);
        if (ec && ec != http::error::need_buffer) throw beast::system_error(ec);
        size_t n = sizeof chunk - parser.get().body().size;
        done += static_cast<int64_t>(n);
        if (to_file) {
          if (std::fwrite(chunk, 1, n, sink) != n) throw std::runtime_error("write: disk full");
          if (progress) progress(done, total);
        } else {
          out.body.append(chunk, n);
        }
      }
      return out;
    };
    return tls ? run(secure) : run(plain);
  } catch (const std::exception& e) {
    return MakeStatus(Code::kUnavailable, "GET {}: {}", url.buffer(), e.what());
  }
}

// "manifest unknown" from {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}.
std::string RegistryError(const HttpResponse& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("errors")) {
    const auto& errors = v.as_object().at("errors");
    if (errors.is_array() && !errors.as_array().empty()) {
      const auto& e = errors.as_array()[0].as_object();
      std::string code = e.contains("code") ? std::string(e.at("code").as_string()) : "";
      std::string message = e.contains("message") ? std::string(e.at("message").as_string()) : "";
      for (auto& c : code) c = c == '_' ? ' ' : static_cast<char>(std::tolower(c));
      return code.empty() ? message : code + ": " + message;
    }
  }
  return fmt::format("HTTP {}", r.status);
}

// One registry endpoint: its base URL, and the bearer token it last issued.
class Endpoint {
 public:
  explicit Endpoint(std::string base) : base_(std::move(base)) {}
  const std::string& base() const { return base_; }

  // GET base + path, answering a bearer challenge once and following redirects.
  Result<HttpResponse> Get(const std::string& path, const std::string& accept,
                           std::FILE* sink = nullptr,
                           const std::function<void(int64_t, int64_t)>& progress = {}) {
    std::string text = base_ + path;  // parse_uri returns a view of it.
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return MakeStatus(Code::kInvalidArgument, "bad URL {}", text);
    boost::urls::url url = *parsed;
    bool same_host = true;
    for (int attempt = 0; attempt < 8; ++attempt) {
      std::string auth = same_host && !token_.empty() ? "Bearer " + token_ : "";
      KISO_ASSIGN_OR_RETURN(auto r, Fetch(url, auth, accept, sink, progress));
      if (r.status == 401 && token_.empty() && r.headers.contains("www-authenticate")) {
        KISO_RETURN_IF_ERROR(Authenticate(r.headers["www-authenticate"]));
        continue;
      }
      if (r.status >= 300 && r.status < 400 && r.headers.contains("location")) {
        const std::string& location = r.headers["location"];
        auto next = boost::urls::parse_uri_reference(location);
        if (!next) return MakeStatus(Code::kInternal, "bad redirect {}", r.headers["location"]);
        boost::urls::url resolved;
        boost::urls::resolve(url, *next, resolved);
        same_host = resolved.host() == url.host() && same_host;
        url = resolved;
        continue;
      }
      return r;
    }
    return MakeStatus(Code::kInternal, "GET {}: too many redirects", base_ + path);
  }

 private:
  // WWW-Authenticate: Bearer realm="https://auth…/token",service="…",scope="…"
  Status Authenticate(const std::string& challenge) {
    if (!challenge.starts_with("Bearer ")) {
      return MakeStatus(Code::kUnavailable, "the registry wants {} authentication",
                        challenge.substr(0, challenge.find(' ')));
    }
    std::map<std::string, std::string> params;
    std::string rest = challenge.substr(7);
    size_t pos = 0;
    while (pos < rest.size()) {
      size_t eq = rest.find('=', pos);
      if (eq == std::string::npos) break;
      std::string key = rest.substr(pos, eq - pos);
      while (!key.empty() && (key.front() == ' ' || key.front() == ',')) key.erase(0, 1);
      size_t start = eq + 2;  // After ="
      size_t end = rest.find('"', start);
      if (end == std::string::npos) break;
      params[key] = rest.substr(start, end - start);
      pos = end + 1;
    }
    const std::string& realm_text = params["realm"];
    auto parsed = boost::urls::parse_uri(realm_text);
    if (!parsed) return MakeStatus(Code::kUnavailable, "bad token realm {:?}", params["realm"]);
    boost::urls::url realm = *parsed;
    if (params.contains("service")) realm.params().append({"service", params["service"]});
    if (params.contains("scope")) realm.params().append({"scope", params["scope"]});
    KISO_ASSIGN_OR_RETURN(auto r, Fetch(realm, "", "application/json", nullptr, {}));
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (r.status != 200 || ec || !v.is_object()) {
      return MakeStatus(Code::kUnavailable, "token from {}: HTTP {}", params["realm"], r.status);
    }
    for (const char* key : {"token", "access_token"}) {
      if (const auto* t = v.as_object().if_contains(key); t && t->is_string()) {
        token_ = std::string(t->get_string());
        return Status::Ok();
      }
    }
    return MakeStatus(Code::kUnavailable, "token from {}: no token in the answer", params["realm"]);
  }

  std::string base_;
  std::string token_;
};

std::string DefaultEndpoint(const std::string& registry) {
  if (registry == "docker.io") return "https://registry-1.docker.io";
  bool loopback = registry.starts_with("127.") || registry.starts_with("localhost") ||
                  registry.starts_with("[::1]");
  return (loopback ? "http://" : "https://") + registry;
}

Result<std::string> FetchBlob(Endpoint& ep, ImageStore& store, const std::string& repository,
                              const std::string& digest,
                              const std::function<void(const PullProgress&)>& progress) {
  if (store.blobs().Has(digest)) return digest;
  fs::create_directories(store.root() + "/blobs/sha256");
  std::string tmp = fmt::format("{}/blobs/sha256/.pull-{:016x}", store.root(), ThreadRng()());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return MakeStatus(Code::kInternal, "create {}", tmp);
  auto r = ep.Get(fmt::format("/v2/{}/blobs/{}", repository, digest), "", f,
                  [&](int64_t done, int64_t total) {
                    if (progress) progress({digest, done, total});
                  });
  bool flushed = std::fclose(f) == 0;
  std::error_code ec;
  if (!r.ok() || r->status != 200 || !flushed) {
    fs::remove(tmp, ec);
    if (!r.ok()) return r.status();
    if (!flushed) return MakeStatus(Code::kResourceExhausted, "write {}: disk full", tmp);
    return MakeStatus(Code::kNotFound, "blob {}: {}", digest, RegistryError(*r));
  }
  return store.blobs().Adopt(tmp, digest);
}

}  // namespace

Result<Image> Registry::Pull(ImageStore& store, const Reference& ref,
                             const std::function<void(const PullProgress&)>& progress) {
  // Configured mirrors replace the registry (nothing else is contacted).
  std::vector<std::string> bases;
  if (auto it = config_.mirrors.find(ref.registry); it != config_.mirrors.end()) bases = it->second;
  if (bases.empty()) bases.push_back(DefaultEndpoint(ref.registry));
  std::string reference = ref.digest.empty() ? ref.tag : ref.digest;
  Status last;
  for (const auto& base : bases) {
    Endpoint ep(base);
    auto manifest = ep.Get(fmt::format("/v2/{}/manifests/{}", ref.repository, reference), kAccept);
    if (!manifest.ok()) {
      last = manifest.status();
      continue;
    }
    if (manifest->status != 200) {
      last = Status(Code::kNotFound, RegistryError(*manifest));
      continue;
    }
    // The top-level manifest (or index) as served, verified when asked by digest.
    auto top = store.blobs().Put(manifest->body, ref.digest);
    if (!top.ok()) return top.status().Annotate(fmt::format("pull {}", ref.String()));
    boost::system::error_code ec;
    json::value doc = json::parse(manifest->body, ec);
    if (ec || !doc.is_object()) {
      return MakeStatus(Code::kInvalidArgument, "pull {}: the manifest is not JSON", ref.String());
    }
    std::string media(doc.as_object().contains("mediaType")
                          ? std::string(doc.at("mediaType").as_string())
                          : manifest->headers["content-type"]);
    if (IsIndexMediaType(media) || doc.as_object().contains("manifests")) {
      KISO_ASSIGN_OR_RETURN(auto chosen, SelectPlatform(doc));
      auto m = ep.Get(fmt::format("/v2/{}/manifests/{}", ref.repository, chosen), kAccept);
      if (!m.ok()) return m.status().Annotate(fmt::format("pull {}", ref.String()));
      if (m->status != 200) {
        return MakeStatus(Code::kNotFound, "pull {}: {}", ref.String(), RegistryError(*m));
      }
      auto stored = store.blobs().Put(m->body, chosen);
      if (!stored.ok()) return stored.status().Annotate(fmt::format("pull {}", ref.String()));
      doc = json::parse(m->body, ec);
    }
    std::vector<std::string> blobs;
    blobs.emplace_back(doc.at("config").at("digest").as_string());
    for (const auto& l : doc.at("layers").as_array())
      blobs.emplace_back(l.at("digest").as_string());
    for (const auto& d : blobs) {
      auto got = FetchBlob(ep, store, ref.repository, d, progress);
      if (!got.ok()) return got.status().Annotate(fmt::format("pull {}", ref.String()));
    }
    return store.Tag(ref, *top);
  }
  return last.Annotate(fmt::format("pull {}", ref.String()));
}

}  // namespace kiso::image
