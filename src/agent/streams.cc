// Container streams through the API: pods/log from the CRI log files the shims
// write (follow, previous, tailLines, timestamps, sinceSeconds, limitBytes, as
// kubectl logs sends them), and pods/exec and pods/attach over the channel
// protocol.
#include <fcntl.h>
#include <fmt/chrono.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <variant>

#include "agent/agent.h"
#include "api/errors.h"
#include "api/object.h"
#include "apiserver/http/http.h"
#include "network/netns.h"

namespace kiso::agent {

namespace json = boost::json;
using runtime::ContainerState;
using runtime::ContainerStatus;

namespace {

apiserver::Response Error(const api::ApiError& e) {
  apiserver::Response r;
  r.status = e.code;
  r.body = e.ToJson();
  return r;
}

struct LogLine {
  std::string time;  // RFC 3339 with nanoseconds.
  std::string text;  // With its newline when the line was complete.
  bool stderr_line = false;
};

// Parses CRI log lines from `data`; a partial line (P) joins the next one
// unless `join` is false. `consumed` is how many bytes formed whole lines.
std::vector<LogLine> ParseCri(std::string_view data, size_t* consumed, bool join = true) {
  std::vector<LogLine> out;
  std::string partial;
  std::string partial_time;
  size_t pos = 0;
  *consumed = 0;
  while (true) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) break;
    std::string_view line = data.substr(pos, nl - pos);
    pos = nl + 1;
    size_t a = line.find(' ');
    size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    size_t c = b == std::string_view::npos ? b : line.find(' ', b + 1);
    if (c == std::string_view::npos) continue;
    std::string_view time = line.substr(0, a);
    std::string_view tag = line.substr(b + 1, c - b - 1);
    std::string_view text = line.substr(c + 1);
    if (!join) {  // Each record as it came, partial ones without a newline.
      out.push_back({std::string(time), std::string(text) + (tag == "P" ? "" : "\n"),
                     line.substr(a + 1, b - a - 1) == "stderr"});
      *consumed = pos;
      continue;
    }
    if (partial_time.empty()) partial_time = std::string(time);
    partial += text;
    if (tag == "P") continue;
    out.push_back({partial_time, partial + "\n", line.substr(a + 1, b - a - 1) == "stderr"});
    partial.clear();
    partial_time.clear();
    *consumed = pos;
  }
  return out;
}

// Whether the client asks to upgrade to SPDY/3.1 (kubectl's fallback, older clients).
bool SpdyUpgrade(const apiserver::Request& req) {
  std::string upgrade(req.Header("upgrade"));
  for (auto& c : upgrade) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return upgrade == "spdy/3.1";
}

// The channel protocol the client offers: in a WebSocket v5 (kubectl 1.30+)
// or v4 (the Python client), after an SPDY upgrade v4 (in
// X-Stream-Protocol-Version); "" when none of these.
std::string ChannelProtocol(const apiserver::Request& req) {
  std::string_view offered = req.Header("sec-websocket-protocol");
  for (const char* p : {"v5.channel.k8s.io", "v4.channel.k8s.io"}) {
    if (offered.find(p) != std::string_view::npos) return p;
  }
  if (SpdyUpgrade(req) &&
      req.Header("x-stream-protocol-version").find("v4.channel.k8s.io") != std::string_view::npos)
    return "v4.channel.k8s.io";
  return "";
}

api::ApiError NoChannelProtocol(std::string_view subresource) {
  return api::BadRequest(
      fmt::format("pods/{} needs a WebSocket upgrade offering v5.channel.k8s.io or "
                  "v4.channel.k8s.io, or an SPDY/3.1 upgrade offering v4.channel.k8s.io",
                  subresource));
}

// Switches to a WebSocket speaking `protocol` that carries `session`.
apiserver::Response Upgrade(std::shared_ptr<apiserver::ChannelSession> session,
                            std::string protocol) {
  apiserver::Response res;
  res.status = 101;
  res.channels = std::move(session);
  res.websocket_protocol = std::move(protocol);
  return res;
}

// Resizes the terminal `fd` (ours: closed when the last copy of the function goes).
std::function<void(uint16_t, uint16_t)> Resizer(int fd) {
  auto terminal = std::shared_ptr<int>(new int(fd), [](const int* owned) {
    if (*owned >= 0) close(*owned);
    delete owned;
  });
  return [terminal](uint16_t cols, uint16_t rows) { ResizeTerminal(*terminal, cols, rows); };
}

std::string ReadFrom(const std::string& path, size_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  return {std::istreambuf_iterator<char>(in), {}};
}

// The newest of a log's rotated files (LOG.<YYYYMMDD-hhmmss>[.N]), or "".
std::string NewestRotated(const std::string& log) {
  std::filesystem::path p(log);
  std::string prefix = p.filename().string() + ".";
  std::string newest;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(p.parent_path(), ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(prefix) && name > newest) newest = name;
  }
  return newest.empty() ? "" : (p.parent_path() / newest).string();
}

}  // namespace

std::variant<ContainerStatus, apiserver::Response> Agent::FindContainer(
    const json::value& pod, const apiserver::Request& req, bool want_previous) {
  std::string pod_name(api::GetString(pod, {"metadata", "name"}));
  std::string key = fmt::format("{}/{}", api::GetString(pod, {"metadata", "namespace"}), pod_name);
  std::vector<std::string> names;
  if (const auto* cs = api::Find(pod, {"spec", "containers"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) names.emplace_back(api::GetString(c, {"name"}));
  }
  if (const auto* cs = api::Find(pod, {"spec", "initContainers"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) names.emplace_back(api::GetString(c, {"name"}));
  }
  std::string container(req.Query("container").value_or(""));
  if (container.empty()) {
    if (names.size() != 1) {
      return Error(api::BadRequest(
          fmt::format("a container name must be specified for pod {}, choose one of: [{}]",
                      pod_name, fmt::join(names, " "))));
    }
    container = names[0];
  }
  if (std::find(names.begin(), names.end(), container) == names.end()) {
    return Error(
        api::BadRequest(fmt::format("container {} is not valid for pod {}", container, pod_name)));
  }
  std::string sandbox;
  {
    std::lock_guard lock(mu_);
    auto it = state_.find(key);
    if (it != state_.end()) sandbox = it->second.sandbox_id;
  }
  std::vector<ContainerStatus> all;
  if (!sandbox.empty()) all = ContainersOf(sandbox);
  auto [latest, previous] = AttemptsOf(all, container);
  if (want_previous && !previous) {
    return Error(api::BadRequest(fmt::format(
        "previous terminated container \"{}\" in pod \"{}\" not found", container, pod_name)));
  }
  if (!latest) {
    return Error(api::BadRequest(
        fmt::format("container \"{}\" in pod \"{}\" is waiting to start: ContainerCreating",
                    container, pod_name)));
  }
  return want_previous ? *previous : *latest;
}

std::variant<ContainerStatus, apiserver::Response> Agent::RunningContainer(
    const json::value& pod, const apiserver::Request& req, std::string_view verb) {
  auto found = FindContainer(pod, req, false);
  if (const auto* c = std::get_if<ContainerStatus>(&found);
      c && c->state != ContainerState::kRunning) {
    return Error(api::BadRequest(
        fmt::format("cannot {} a container that is not running: container {} in pod {}", verb,
                    c->name, api::GetString(pod, {"metadata", "name"}))));
  }
  return found;
}

apiserver::Response Agent::ServeStream(const json::value& pod, std::string_view subresource,
                                       const apiserver::Request& req) {
  if (subresource == "log") return ServeLogs(pod, req);
  if (subresource == "exec") return ServeExec(pod, req);
  if (subresource == "attach") return ServeAttach(pod, req);
  if (subresource == "portforward") return ServePortForward(pod, req);
  if (subresource == "proxy") return ServeNodeProxy(req);  // `pod` is the Node.
  return Error(api::NotFoundPath());
}

apiserver::Response Agent::ServeStream(const apiserver::Request& req) {
  // /api/v1/namespaces/NS/pods/NAME/SUBRESOURCE
  std::vector<std::string_view> parts;
  std::string_view path = req.path;
  for (size_t start = 0; start < path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  // /api/v1/nodes/NAME/proxy/...: the node's own endpoints.
  if (parts.size() >= 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "nodes" &&
      parts[3] == options_.node_name && parts[4] == "proxy") {
    return ServeNodeProxy(req);
  }
  if (parts.size() != 7 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces" ||
      parts[4] != "pods") {
    return Error(api::NotFoundPath());
  }
  std::string ns(parts[3]), name(parts[5]);
  auto pod = pods_ ? pods_->Get(ns, name) : std::nullopt;
  if (!pod) {
    return Error(api::NotFound(*api::FindResource("", "v1", "pods"), name));
  }
  return ServeStream(*pod, parts[6], req);
}

apiserver::Response Agent::ServeLogs(const json::value& pod, const apiserver::Request& req) {
  bool want_previous = req.QueryBool("previous");
  auto found = FindContainer(pod, req, want_previous);
  if (auto* error = std::get_if<apiserver::Response>(&found)) return std::move(*error);
  ContainerStatus target = std::get<ContainerStatus>(found);
  bool timestamps = req.QueryBool("timestamps");
  bool follow = req.QueryBool("follow") && !want_previous;
  int64_t tail = -1;
  if (auto t = req.Query("tailLines")) tail = std::atoll(std::string(*t).c_str());
  int64_t limit = -1;
  if (auto l = req.Query("limitBytes")) limit = std::atoll(std::string(*l).c_str());
  std::string since;
  if (auto s = req.Query("sinceSeconds")) {
    auto from = std::chrono::system_clock::now() -
                std::chrono::seconds(std::atoll(std::string(*s).c_str()));
    auto secs = std::chrono::floor<std::chrono::seconds>(from);
    since = fmt::format("{:%Y-%m-%dT%H:%M:%S}",
                        fmt::gmtime(std::chrono::system_clock::to_time_t(secs)));
  }
  auto render = [timestamps, since](const std::vector<LogLine>& lines, size_t first) {
    std::string out;
    for (size_t i = first; i < lines.size(); ++i) {
      if (!since.empty() && lines[i].time.substr(0, 19) < since) continue;
      if (timestamps) out += lines[i].time + " ";
      out += lines[i].text;
    }
    return out;
  };
  size_t consumed = 0;
  auto lines = ParseCri(ReadFrom(target.log_path, 0), &consumed);
  size_t first = tail >= 0 && static_cast<size_t>(tail) < lines.size()
                     ? lines.size() - static_cast<size_t>(tail)
                     : 0;
  std::string body = render(lines, first);
  if (limit >= 0 && body.size() > static_cast<size_t>(limit))
    body.resize(static_cast<size_t>(limit));
  apiserver::Response res;
  res.content_type = "text/plain";
  if (!follow) {
    res.body = std::move(body);
    return res;
  }
  std::string path = target.log_path;
  std::string id = target.id;
  res.stream = [this, path, id, consumed, render,
                body = std::move(body)](apiserver::StreamWriter& out) mutable {
    if (!body.empty() && !out.Write(body)) return;
    size_t offset = consumed;
    while (!out.Stopping() && !loop_.stopping()) {
      size_t used = 0;
      std::error_code ec;
      if (auto size = std::filesystem::file_size(path, ec); !ec && size < offset) {
        // The shim rotated the log: the rest of what was read is in the newest
        // rotated file (LOG.<time>); then the new log from its start.
        std::string newest = NewestRotated(path);
        if (!newest.empty()) {
          auto rest = ParseCri(ReadFrom(newest, offset), &used);
          if (!rest.empty() && !out.Write(render(rest, 0))) return;
        }
        offset = 0;
        used = 0;
      }
      auto more = ParseCri(ReadFrom(path, offset), &used);
      offset += used;
      if (!more.empty() && !out.Write(render(more, 0))) return;
      if (more.empty()) {
        auto st = runtime_->GetStatus(id);
        if (!st.ok() || st->state == ContainerState::kExited) {
          // Whatever the shim wrote before the exit was recorded.
          auto last = ParseCri(ReadFrom(path, offset), &used);
          if (!last.empty()) out.Write(render(last, 0));
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  };
  return res;
}

apiserver::Response Agent::ServeExec(const json::value& pod, const apiserver::Request& req) {
  auto found = RunningContainer(pod, req, "exec in");
  if (auto* error = std::get_if<apiserver::Response>(&found)) return std::move(*error);
  const ContainerStatus& target = std::get<ContainerStatus>(found);
  std::string pod_name(api::GetString(pod, {"metadata", "name"}));
  std::vector<std::string> command = req.QueryAll("command");
  if (command.empty()) return Error(api::BadRequest("you must specify at least 1 command"));
  std::string protocol = ChannelProtocol(req);
  if (protocol.empty()) return Error(NoChannelProtocol("exec"));
  bool tty = req.QueryBool("tty");
  auto child = runtime_->Exec(target.id, command, req.QueryBool("stdin") || tty, tty);
  if (!child.ok()) return Error(api::InternalError(child.status().message()));
  auto session = std::make_shared<apiserver::ChannelSession>();
  session->stdin_fd = child->stdin_fd;
  session->stdout_fd = child->stdout_fd;
  session->stderr_fd = child->stderr_fd;
  if (child->tty_fd >= 0) session->resize = Resizer(child->tty_fd);
  pid_t pid = child->pid;
  std::string joined = fmt::format("{}", fmt::join(command, " "));
  session->finish = [pid, joined] {
    int code = WaitProcess(pid);
    if (code == 0) return std::string(R"({"metadata":{},"status":"Success"})");
    json::object status{
        {"metadata", json::object()},
        {"status", "Failure"},
        {"message",
         fmt::format("command terminated with non-zero exit code: error executing command [{}], "
                     "exit code {}",
                     joined, code)},
        {"reason", "NonZeroExitCode"},
        {"details",
         json::object{{"causes", json::array{json::object{{"reason", "ExitCode"},
                                                          {"message", std::to_string(code)}}}}}}};
    return json::serialize(status);
  };
  session->abort = [pid] {
    kill(pid, SIGKILL);
    WaitProcess(pid);
  };
  return Upgrade(std::move(session), protocol);
}

apiserver::Response Agent::ServeAttach(const json::value& pod, const apiserver::Request& req) {
  auto found = RunningContainer(pod, req, "attach to");
  if (auto* error = std::get_if<apiserver::Response>(&found)) return std::move(*error);
  const ContainerStatus& target = std::get<ContainerStatus>(found);
  std::string pod_name(api::GetString(pod, {"metadata", "name"}));
  // Checked before the protocol: kubectl retries a refused WebSocket over
  // SPDY and shows only the second answer, so both must carry the cause.
  auto session = std::make_shared<apiserver::ChannelSession>();
  if (req.QueryBool("stdin")) {
    auto in = runtime_->AttachStdin(target.id);
    if (!in.ok()) {
      return Error(api::BadRequest(
          fmt::format("container {} in pod {}: {}", target.name, pod_name, in.status().message())));
    }
    session->stdin_fd = in->fd;
    if (in->terminal) session->resize = Resizer(fcntl(in->fd, F_DUPFD_CLOEXEC, 0));
  }
  std::string protocol = ChannelProtocol(req);
  if (protocol.empty()) {
    close(session->stdin_fd);
    return Error(NoChannelProtocol("attach"));
  }
  // Output from now on, as the shim logs it, until the container exits or the
  // client leaves (the pump closes its ends of the pipes).
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {out[0], out[1], err[0], err[1], session->stdin_fd}) {
      if (fd >= 0) close(fd);
    }
    return Error(api::InternalError(fmt::format("pipe: {}", strerror(errno))));
  }
  bool want_out = req.QueryBool("stdout");
  bool want_err = req.QueryBool("stderr");
  session->stdout_fd = out[0];
  session->stderr_fd = err[0];
  // Ends (and is joined) with the session, after the pump has closed the
  // pipes' read ends: a blocked write then fails.
  struct Follower {
    std::atomic<bool> stop{false};
    std::thread thread;
    ~Follower() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  };
  auto follower = std::make_shared<Follower>();
  std::error_code size_ec;
  auto start = std::filesystem::file_size(target.log_path, size_ec);
  follower->thread = std::thread([this, stop = &follower->stop, path = target.log_path,
                                  id = target.id, offset = size_ec ? 0 : start, out = out[1],
                                  err = err[1], want_out, want_err]() mutable {
    auto write_all = [](int fd, std::string_view data) {
      while (!data.empty()) {
        ssize_t n = write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
      }
      return true;
    };
    bool open = true;
    while (open && !*stop && !loop_.stopping()) {
      size_t used = 0;
      auto lines = ParseCri(ReadFrom(path, offset), &used, false);
      offset += used;
      for (const auto& line : lines) {
        if (line.stderr_line ? want_err : want_out)
          open = open && write_all(line.stderr_line ? err : out, line.text);
      }
      if (lines.empty()) {
        auto st = runtime_->GetStatus(id);
        if (!st.ok() || st->state == ContainerState::kExited) {
          for (const auto& line : ParseCri(ReadFrom(path, offset), &used, false)) {
            if (line.stderr_line ? want_err : want_out)
              write_all(line.stderr_line ? err : out, line.text);
          }
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    close(out);
    close(err);
  });
  session->finish = [follower] { return std::string(R"({"metadata":{},"status":"Success"})"); };
  session->abort = [follower] { follower->stop = true; };
  return Upgrade(std::move(session), protocol);
}

apiserver::Response Agent::ServePortForward(const json::value& pod, const apiserver::Request& req) {
  std::string pod_name(api::GetString(pod, {"metadata", "name"}));
  std::string key = fmt::format("{}/{}", api::GetString(pod, {"metadata", "namespace"}), pod_name);
  std::string netns;
  {
    std::lock_guard lock(mu_);
    auto it = state_.find(key);
    if (it != state_.end() && !it->second.sandbox_id.empty()) netns = it->second.sandbox.netns_path;
  }
  // kubectl: SPDY streams name the ports, one pair per local connection,
  // inside a WebSocket or after an SPDY upgrade.
  bool spdy_in_websocket =
      req.Header("sec-websocket-protocol").find(apiserver::kSpdyPortForwardProtocol) !=
      std::string_view::npos;
  if (spdy_in_websocket || SpdyUpgrade(req)) {
    if (netns.empty()) {
      return Error(api::BadRequest(
          fmt::format("pod {} has no network yet: it is not running on this node", pod_name)));
    }
    auto session = std::make_shared<apiserver::ChannelSession>();
    std::string uid(api::GetString(pod, {"metadata", "uid"}));
    session->dial = [netns, pod_name, uid](uint16_t port, std::string* error) {
      auto fd = network::DialInNamespace(netns, port);
      if (fd.ok()) return *fd;
      *error = fmt::format("error forwarding port {} to pod {}, uid {}: {}", port, pod_name, uid,
                           fd.status().message());
      return -1;
    };
    return Upgrade(std::move(session), std::string(apiserver::kSpdyPortForwardProtocol));
  }
  if (ChannelProtocol(req) != "v4.channel.k8s.io") {
    return Error(
        api::BadRequest("pods/portforward needs a WebSocket upgrade offering v4.channel.k8s.io or "
                        "SPDY/3.1+portforward.k8s.io, or an SPDY/3.1 upgrade"));
  }
  std::vector<uint16_t> ports;
  for (const auto& value : req.QueryAll("ports")) {
    for (size_t start = 0; start <= value.size();) {
      size_t comma = std::min(value.find(',', start), value.size());
      std::string item = value.substr(start, comma - start);
      start = comma + 1;
      char* end = nullptr;
      long n = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || n < 1 || n > 65535) {
        return Error(api::BadRequest(fmt::format("invalid port {:?}: a number 1-65535", item)));
      }
      ports.push_back(static_cast<uint16_t>(n));
    }
  }
  if (ports.empty()) return Error(api::BadRequest("at least one port must be given (?ports=80)"));
  if (netns.empty()) {
    return Error(api::BadRequest(
        fmt::format("pod {} has no network yet: it is not running on this node", pod_name)));
  }
  auto session = std::make_shared<apiserver::ChannelSession>();
  for (uint16_t port : ports) {
    apiserver::ChannelSession::Port p;
    p.number = port;
    auto fd = network::DialInNamespace(netns, port);
    if (fd.ok()) {
      p.fd = *fd;
    } else {
      p.error = fmt::format("error forwarding port {} to pod {}: {}", port, pod_name,
                            fd.status().message());
    }
    session->ports.push_back(std::move(p));
  }
  return Upgrade(std::move(session), "v4.channel.k8s.io");
}

}  // namespace kiso::agent
