#include "network/bridge.h"

#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/file.h"
#include "network/netns.h"
#include "network/rtnl.h"

namespace kiso::network {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr const char* kPodInterface = "eth0";

// An flock of `path` for the scope: host-local's, so a plugin process and the
// agent never allocate at once (flock also excludes the agent's other threads:
// each opens the file anew).
class FileLock {
 public:
  static Result<FileLock> Take(const std::string& path) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return MakeStatus(Code::kInternal, "open {}: {}", path, strerror(errno));
    while (flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int e = errno;
        close(fd);
        return MakeStatus(Code::kInternal, "lock {}: {}", path, strerror(e));
      }
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) close(fd_);  // Releases the lock.
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// Whether an address file names (id, ifname): "<id>\r\n<ifname>", or the
// bare id older host-local versions wrote.
bool Holds(const Result<std::string>& content, const std::string& id, const std::string& ifname) {
  if (!content.ok()) return false;
  std::string_view c(*content);
  while (!c.empty() && (c.back() == '\n' || c.back() == '\r' || c.back() == ' '))
    c.remove_suffix(1);
  return c == id + "\r\n" + ifname || c == id;
}

Status WriteFile(const std::string& path, const std::string& text, int flags) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | flags, 0644);
  if (fd < 0) {
    return MakeStatus(errno == EEXIST ? Code::kAlreadyExists : Code::kInternal, "create {}: {}",
                      path, strerror(errno));
  }
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int e = errno;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return MakeStatus(Code::kInternal, "write {}: {}", path, strerror(e));
  }
  return Status::Ok();
}

}  // namespace

Result<uint32_t> HostLocalIpam::Allocate(const std::string& id, const std::string& ifname) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return MakeStatus(Code::kInternal, "create {}: {}", dir_, ec.message());
  KISO_ASSIGN_OR_RETURN(auto lock, FileLock::Take(dir_ + "/lock"));
  // What (id, ifname) holds already: an ADD tried again gets its address back.
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    auto ip = ParseIpv4(e.path().filename().string());
    if (ip && range_.Contains(*ip) && Holds(ReadFile(e.path().string()), id, ifname)) return *ip;
  }
  // Hosts are base+1 .. base+size-2; base+1 is the gateway.
  const uint32_t first = range_.base + 2;
  const uint32_t last = range_.base + static_cast<uint32_t>(range_.Size()) - 2;
  const std::string last_file = dir_ + "/last_reserved_ip.0";
  uint32_t next = first;
  auto last_text = ReadFile(last_file);
  if (auto reserved = last_text.ok() ? ParseIpv4(*last_text) : std::nullopt;
      reserved && *reserved >= first && *reserved < last) {
    next = *reserved + 1;
  }
  const std::string holder = fmt::format("{}\r\n{}", id, ifname);
  for (uint32_t tried = 0; last >= first && tried <= last - first; ++tried) {
    const uint32_t ip = next;
    next = next == last ? first : next + 1;
    Status s = WriteFile(fmt::format("{}/{}", dir_, FormatIpv4(ip)), holder, O_CREAT | O_EXCL);
    if (s.code() == Code::kAlreadyExists) continue;
    KISO_RETURN_IF_ERROR(s);
    (void)WriteFile(last_file, FormatIpv4(ip), O_CREAT | O_TRUNC);
    return ip;
  }
  return MakeStatus(Code::kResourceExhausted, "no IP addresses available in range set: {}-{}",
                    FormatIpv4(first), FormatIpv4(last));
}

Status HostLocalIpam::Release(const std::string& id, const std::string& ifname, uint32_t hint) {
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return Status::Ok();
  KISO_ASSIGN_OR_RETURN(auto lock, FileLock::Take(dir_ + "/lock"));
  auto release = [&](const std::string& path) {
    if (!Holds(ReadFile(path), id, ifname)) return false;
    unlink(path.c_str());
    return true;
  };
  if (hint != 0 && release(dir_ + "/" + FormatIpv4(hint))) return Status::Ok();
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (ParseIpv4(e.path().filename().string())) release(e.path().string());
  }
  return Status::Ok();
}

Result<int> BridgeNetwork::EnsureBridge() {
  std::lock_guard lock(mu_);
  if (bridge_index_ != 0 &&
      if_nametoindex(options_.bridge.c_str()) == static_cast<unsigned>(bridge_index_)) {
    return bridge_index_;
  }
  const uint32_t gateway = ipam_.gateway();
  KISO_ASSIGN_OR_RETURN(auto rtnl, Rtnl::Open());
  KISO_ASSIGN_OR_RETURN(int index,
                        rtnl.EnsureBridge(options_.bridge, MacOf(gateway), options_.mtu));
  KISO_RETURN_IF_ERROR(rtnl.AddAddress(index, FormatIpv4(gateway), options_.range.prefix, true));
  // The gateway forwards: pods reach Services, the node and beyond through it.
  if (std::ofstream f("/proc/sys/net/ipv4/ip_forward"); !(f << "1\n").flush()) {
    return MakeStatus(Code::kInternal, "enable forwarding (net.ipv4.ip_forward): {}",
                      strerror(errno));
  }
  bridge_index_ = index;
  return index;
}

Result<json::value> BridgeNetwork::Add(const std::string& id, const std::string& netns) {
  KISO_ASSIGN_OR_RETURN(int bridge, EnsureBridge());
  KISO_ASSIGN_OR_RETURN(uint32_t ip, ipam_.Allocate(id, kPodInterface));
  auto undo = [&](Status s) {
    (void)Del(id, netns, FormatIpv4(ip));
    return s;
  };
  const int ns = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    return undo(
        MakeStatus(Code::kNotFound, "the pod's network namespace {}: {}", netns, strerror(errno)));
  }
  auto rtnl = Rtnl::Open();
  if (!rtnl.ok()) {
    close(ns);
    return undo(rtnl.status());
  }
  // The node end's name: "veth" and 8 random hex digits, as the plugin's.
  static thread_local std::mt19937 random(std::random_device{}());
  std::string veth;
  Result<int> host = Status(Code::kInternal, "no veth made");
  for (int attempt = 0; attempt < 4; ++attempt) {
    veth = fmt::format("veth{:08x}", static_cast<uint32_t>(random()));
    host = rtnl->CreateVeth(veth, kPodInterface, MacOf(ip), ns, bridge, options_.mtu);
    if (host.ok() || host.status().code() != Code::kAlreadyExists ||
        if_nametoindex(veth.c_str()) == 0) {
      break;  // Made, or failed for another reason than the name (eth0 there already).
    }
  }
  close(ns);
  if (!host.ok()) return undo(host.status());
  if (Status s = rtnl->SetHairpin(*host); !s.ok()) return undo(s);
  if (Status s = rtnl->SetUp(*host); !s.ok()) return undo(s);
  const std::string address = FormatIpv4(ip);
  const std::string gateway = FormatIpv4(ipam_.gateway());
  Status inside = RunInNamespace(netns, [&]() -> Status {
    KISO_ASSIGN_OR_RETURN(auto pod, Rtnl::Open());
    const int index = static_cast<int>(if_nametoindex(kPodInterface));
    if (index == 0) return MakeStatus(Code::kInternal, "no {} in {}", kPodInterface, netns);
    // Neighbours learn the address's MAC as the interface comes up (the plugin's setting).
    std::ofstream("/proc/sys/net/ipv4/conf/eth0/arp_notify") << "1\n";
    KISO_RETURN_IF_ERROR(pod.SetUp(index));
    KISO_RETURN_IF_ERROR(pod.AddAddress(index, address, options_.range.prefix, true));
    Route route{"0.0.0.0/0", gateway, index, false, RTPROT_BOOT};
    return pod.ReplaceRoute(route);
  });
  if (!inside.ok()) return undo(inside);
  json::object bridge_if{{"name", options_.bridge}, {"mac", FormatMac(MacOf(ipam_.gateway()))}};
  return json::value(json::object{
      {"cniVersion", "1.0.0"},
      {"interfaces", json::array{std::move(bridge_if), json::object{{"name", veth}},
                                 json::object{{"name", kPodInterface},
                                              {"mac", FormatMac(MacOf(ip))},
                                              {"sandbox", netns}}}},
      {"ips",
       json::array{json::object{{"interface", 2},
                                {"address", fmt::format("{}/{}", address, options_.range.prefix)},
                                {"gateway", gateway}}}},
      {"routes", json::array{json::object{{"dst", "0.0.0.0/0"}, {"gw", gateway}}}},
      {"dns", json::object{}}});
}

Status BridgeNetwork::Del(const std::string& id, const std::string& netns, const std::string& ip) {
  // Deleting the pod's end deletes the pair; a namespace that is gone took it along.
  std::error_code ec;
  if (!netns.empty() && fs::exists(netns, ec)) {
    Status s = RunInNamespace(netns, [&]() -> Status {
      KISO_ASSIGN_OR_RETURN(auto pod, Rtnl::Open());
      Status deleted = pod.DeleteLink(kPodInterface);
      return deleted.code() == Code::kNotFound ? Status::Ok() : deleted;
    });
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  return ipam_.Release(id, kPodInterface, ParseIpv4(ip).value_or(0));
}

}  // namespace kiso::network
