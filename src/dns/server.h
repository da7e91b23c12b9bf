// DnsServer: the cluster DNS (CoreDNS' role), on UDP and TCP. Queries are
// decoded and answers encoded with Debian's ldns; names in the cluster zone
// are answered from a ClusterZone (authoritative, TTL 5 s, SOA in the
// authority section of NXDOMAIN and NODATA answers), everything else is
// forwarded to the upstream resolvers (the node's /etc/resolv.conf) and the
// answers cached for their TTL. EDNS0: the client's UDP size is honoured (at
// least 512 bytes) and echoed; an answer that does not fit is truncated (TC)
// so that the client asks again over TCP. Answers are cached in wire form per
// question, so a repeated query costs one decode and a copy.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/cidr.h"
#include "common/clock.h"
#include "common/status.h"
#include "dns/zone.h"

namespace kiso::dns {

struct DnsServerOptions {
  std::vector<std::string> addresses = {"127.0.0.1"};  // Each gets UDP and TCP.
  uint16_t port = 0;                                   // 0: one picked for all.
  std::vector<std::string> upstreams;  // "ip" or "ip:port"; none: other names are SERVFAIL.
  int udp_workers = 2;                 // Sockets (SO_REUSEPORT) and threads per address.
  uint32_t ttl = 5;
  size_t cache_entries = 10000;
  int max_tcp_connections = 64;
  // Forwarded UDP queries wait on threads of their own, never on the sockets'
  // (an upstream that does not answer must not hold up the cluster's names).
  int forwarders = 4;
  size_t max_pending_forwards = 1024;  // Beyond: SERVFAIL at once.
  // Who is answered: loopback always, and these (the pods' ranges, the node's
  // addresses); anyone else gets REFUSED, so that the server is no open
  // resolver on the node's address. Empty: everyone.
  std::vector<Ipv4Cidr> clients;
  Clock* clock = Clock::Real();  // The cache's time (tests hand in a FakeClock).
};

class DnsServer {
 public:
  static Result<std::unique_ptr<DnsServer>> Start(const ClusterZone* zone,
                                                  DnsServerOptions options);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  uint16_t port() const { return port_; }
  void Stop();
  // The answer to one query in wire form ("" when it deserves none); what
  // the sockets' threads run. With `deferred`, a query that must go to an
  // upstream is not waited for: *deferred is set and "" returned.
  std::string Answer(std::string_view query, bool tcp, bool* deferred = nullptr);
  // Whether a client at this address is answered (DnsServerOptions::clients).
  bool Allowed(const sockaddr_storage& from) const;

  // The nameservers of a resolv.conf file ("ip" or "ip:port" for each).
  static std::vector<std::string> UpstreamsOf(const std::string& resolv_conf);

 private:
  DnsServer(const ClusterZone* zone, DnsServerOptions options);
  void ServeUdp(int fd);
  void ServeTcp(int fd);
  void ServeTcpConnection(int fd);
  void RunForwarder();
  std::string Forward(std::string_view query, bool tcp);

  const ClusterZone* zone_;
  DnsServerOptions options_;
  uint16_t port_ = 0;
  int stop_fd_ = -1;  // An eventfd: readable once Stop() is called.
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::atomic<int> tcp_connections_{0};
  std::mutex tcp_mu_;
  struct TcpConnection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<TcpConnection> tcp_threads_;  // guarded by tcp_mu_; finished ones joined on accept

  struct PendingForward {
    std::string query;
    sockaddr_storage from;
    socklen_t from_len;
    int fd;
  };
  std::mutex forward_mu_;
  std::condition_variable forward_cv_;
  std::deque<PendingForward> forwards_;  // guarded by forward_mu_
  bool stopping_ = false;                // guarded by forward_mu_
  std::vector<std::thread> forwarders_;

  struct Cached {
    std::string wire;
    uint64_t generation = 0;  // The zone's, for its own answers.
    Clock::TimePoint stored;
    Clock::TimePoint expires;
    bool forwarded = false;  // An upstream's: its TTLs count down while cached.
  };
  std::shared_mutex cache_mu_;
  std::unordered_map<std::string, Cached> cache_;  // guarded by cache_mu_
};

}  // namespace kiso::dns
