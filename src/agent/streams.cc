// Container streams through the API: pods/log from the CRI log files the shims
// write (follow, previous, tailLines, timestamps, sinceSeconds, limitBytes, as
// kubectl logs sends them), and pods/exec over the channel protocol.
#include <fmt/chrono.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <fstream>
#include <thread>
#include <variant>

#include "agent/agent.h"
#include "api/errors.h"
#include "api/object.h"

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
};

// Parses CRI log lines from `data`; a partial line (P) joins the next one.
// `consumed` is how many bytes formed whole lines.
std::vector<LogLine> ParseCri(std::string_view data, size_t* consumed) {
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
    if (partial_time.empty()) partial_time = std::string(time);
    partial += text;
    if (tag == "P") continue;
    out.push_back({partial_time, partial + "\n"});
    partial.clear();
    partial_time.clear();
    *consumed = pos;
  }
  return out;
}

std::string ReadFrom(const std::string& path, size_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  return {std::istreambuf_iterator<char>(in), {}};
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
  std::optional<ContainerStatus> latest;
  std::optional<ContainerStatus> previous;
  if (!sandbox.empty()) {
    for (auto& st : ContainersOf(sandbox)) {
      if (st.name != container) continue;
      if (!latest || st.attempt > latest->attempt) {
        previous = latest;
        latest = st;
      } else if (!previous || st.attempt > previous->attempt) {
        previous = st;
      }
    }
  }
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
  auto found = FindContainer(pod, req, false);
  if (auto* error = std::get_if<apiserver::Response>(&found)) return std::move(*error);
  const ContainerStatus& target = std::get<ContainerStatus>(found);
  std::string pod_name(api::GetString(pod, {"metadata", "name"}));
  if (target.state != ContainerState::kRunning) {
    return Error(api::BadRequest(
        fmt::format("cannot exec in a container that is not running: container {} in pod {}",
                    target.name, pod_name)));
  }
  std::vector<std::string> command = req.QueryAll("command");
  if (command.empty()) return Error(api::BadRequest("you must specify at least 1 command"));
  // The channel protocol: v5 (kubectl 1.30+) or v4 (the Python client).
  std::string offered(req.Header("sec-websocket-protocol"));
  std::string protocol;
  for (const char* p : {"v5.channel.k8s.io", "v4.channel.k8s.io"}) {
    if (offered.find(p) != std::string::npos) {
      protocol = p;
      break;
    }
  }
  if (protocol.empty()) {
    return Error(api::BadRequest(
        "pods/exec needs a WebSocket upgrade offering v5.channel.k8s.io or v4.channel.k8s.io "
        "(SPDY is not supported)"));
  }
  auto child = runtime_->Exec(target.id, command, req.QueryBool("stdin"));
  if (!child.ok()) return Error(api::InternalError(child.status().message()));
  auto session = std::make_shared<apiserver::ChannelSession>();
  session->stdin_fd = child->stdin_fd;
  session->stdout_fd = child->stdout_fd;
  session->stderr_fd = child->stderr_fd;
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
  apiserver::Response res;
  res.status = 101;
  res.channels = std::move(session);
  res.websocket_protocol = protocol;
  return res;
}

}  // namespace kiso::agent
