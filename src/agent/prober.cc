#include "agent/prober.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::agent {

namespace json = boost::json;
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

int64_t IntAt(const json::value& v, std::string_view key, int64_t fallback) {
  const auto* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return f && f->is_int64() ? f->get_int64() : fallback;
}

// A port given by number or by the name of one of the container's ports.
int ResolvePort(const json::value& port, const json::value& c) {
  if (port.is_int64()) return static_cast<int>(port.get_int64());
  if (port.is_string()) {
    if (const auto* ports = api::Find(c, {"ports"}); ports && ports->is_array()) {
      for (const auto& p : ports->get_array()) {
        if (api::GetString(p, {"name"}) == port.get_string())
          return static_cast<int>(IntAt(p, "containerPort", 0));
      }
    }
  }
  return 0;
}

// The probe's host (default: the pod IP) and port, connected within `timeout`.
struct Connection {
  std::string host;
  int port = 0;
  asio::io_context io;
  boost::beast::tcp_stream stream{io};

  Connection(const json::value& action, const json::value& c, const std::string& pod_ip)
      : host(api::GetString(action, {"host"})),
        port(ResolvePort(action.is_object() && action.get_object().contains("port")
                             ? action.get_object().at("port")
                             : json::value(),
                         c)) {
    if (host.empty()) host = pod_ip;
  }
  void Connect(std::chrono::seconds timeout) {  // Throws on failure.
    stream.expires_after(timeout);
    stream.connect(
        asio::ip::tcp::endpoint(asio::ip::make_address(host), static_cast<uint16_t>(port)));
  }
};

ProbeResult HttpGet(const json::value& get, const json::value& c, const std::string& pod_ip,
                    std::chrono::seconds timeout) {
  Connection conn(get, c, pod_ip);
  const std::string& host = conn.host;
  int port = conn.port;
  auto& stream = conn.stream;
  std::string path(api::GetString(get, {"path"}));
  if (path.empty()) path = "/";
  try {
    conn.Connect(timeout);
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, fmt::format("{}:{}", host, port));
    req.set(http::field::user_agent, "kube-probe/1.32");
    if (const auto* headers = api::Find(get, {"httpHeaders"}); headers && headers->is_array()) {
      for (const auto& h : headers->get_array()) {
        req.set(std::string(api::GetString(h, {"name"})),
                std::string(api::GetString(h, {"value"})));
      }
    }
    http::write(stream, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    int code = static_cast<int>(res.result_int());
    if (code >= 200 && code < 400) return {true, ""};
    return {false, fmt::format("HTTP probe failed with statuscode: {}", code)};
  } catch (const std::exception& e) {
    return {false, fmt::format("Get \"http://{}:{}{}\": {}", host, port, path, e.what())};
  }
}

ProbeResult TcpSocket(const json::value& tcp, const json::value& c, const std::string& pod_ip,
                      std::chrono::seconds timeout) {
  Connection conn(tcp, c, pod_ip);
  try {
    conn.Connect(timeout);
    return {true, ""};
  } catch (const std::exception& e) {
    return {false, fmt::format("dial tcp {}:{}: {}", conn.host, conn.port, e.what())};
  }
}

}  // namespace

ProbeTiming TimingOf(const json::value& probe) {
  ProbeTiming t;
  t.initial_delay = std::chrono::seconds(IntAt(probe, "initialDelaySeconds", 0));
  t.period = std::chrono::seconds(std::max<int64_t>(1, IntAt(probe, "periodSeconds", 10)));
  t.timeout = std::chrono::seconds(std::max<int64_t>(1, IntAt(probe, "timeoutSeconds", 1)));
  t.success_threshold = static_cast<int>(IntAt(probe, "successThreshold", 1));
  t.failure_threshold = static_cast<int>(IntAt(probe, "failureThreshold", 3));
  return t;
}

ProbeResult RunProbe(const json::value& probe, const json::value& c,
                     runtime::RuntimeService* runtime, const std::string& id,
                     const std::string& pod_ip) {
  return RunHook(probe, c, runtime, id, pod_ip, TimingOf(probe).timeout);
}

ProbeResult RunHook(const json::value& handler, const json::value& c,
                    runtime::RuntimeService* runtime, const std::string& id,
                    const std::string& pod_ip, std::chrono::seconds timeout) {
  if (const auto* exec = api::Find(handler, {"exec", "command"}); exec && exec->is_array()) {
    std::vector<std::string> cmd;
    for (const auto& a : exec->get_array()) {
      if (a.is_string()) cmd.emplace_back(a.get_string());
    }
    auto r = runtime->ExecSync(id, cmd, timeout);
    if (!r.ok()) return {false, r.status().message()};
    if (r->exit_code == 0) return {true, ""};
    std::string out = r->stdout_data + r->stderr_data;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return {false, out.empty() ? fmt::format("command exited with {}", r->exit_code) : out};
  }
  if (const auto* get = api::Find(handler, {"httpGet"})) return HttpGet(*get, c, pod_ip, timeout);
  if (const auto* tcp = api::Find(handler, {"tcpSocket"})) {
    return TcpSocket(*tcp, c, pod_ip, timeout);
  }
  return {false, "no handler (exec, httpGet or tcpSocket)"};
}

}  // namespace kiso::agent
