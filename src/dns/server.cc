#include "dns/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/cidr.h"

namespace kiso::dns {

namespace {

constexpr size_t kHeader = 12;
constexpr uint16_t kOurUdpSize = 1232;  // The EDNS size we advertise (DNS flag day 2020).

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

// The wire length of the question's name at offset 12, or 0 if malformed.
size_t QuestionNameLength(std::string_view q) {
  size_t at = kHeader;
  while (at < q.size()) {
    auto len = static_cast<unsigned char>(q[at]);
    if (len == 0) return at + 1 - kHeader;
    if (len > 63) return 0;  // No compression in a question we answer.
    at += 1 + len;
  }
  return 0;
}

// A bare header answer (FORMERR, NOTIMP…) to a query we will not decode further.
std::string HeaderOnly(std::string_view query, uint8_t rcode) {
  std::string out(query.substr(0, kHeader));
  out[2] = static_cast<char>(0x80 | (query[2] & 0x79));  // QR, opcode and RD kept.
  out[3] = static_cast<char>(rcode);
  for (size_t i = 4; i < kHeader; ++i) out[i] = 0;
  return out;
}

std::string Wire(const ldns_pkt* p) {
  uint8_t* data = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&data, p, &size) != LDNS_STATUS_OK) return "";
  std::string out(reinterpret_cast<char*>(data), size);
  free(data);
  return out;
}

ldns_rr* MakeRr(const std::string& text) {
  ldns_rr* rr = nullptr;
  if (ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK) return nullptr;
  return rr;
}

int Bind(int type, const std::string& address, uint16_t port, bool reuse_port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      (type == SOCK_STREAM && listen(fd, 128) != 0)) {
    close(fd);
    return -1;
  }
  return fd;
}

uint16_t PortOf(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

bool ParseUpstream(const std::string& text, sockaddr_in* out) {
  std::string host = text;
  uint16_t port = 53;
  if (size_t colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port = static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1));
  }
  *out = {};
  out->sin_family = AF_INET;
  out->sin_port = htons(port);
  return port != 0 && inet_pton(AF_INET, host.c_str(), &out->sin_addr) == 1;
}

// Reads exactly n bytes from a blocking socket with a deadline.
bool ReadFull(int fd, char* buf, size_t n, int timeout_ms) {
  size_t got = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t w = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (w <= 0) return false;
    sent += static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::vector<std::string> DnsServer::UpstreamsOf(const std::string& resolv_conf) {
  std::vector<std::string> out;
  std::ifstream in(resolv_conf);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (words >> key >> value && key == "nameserver" && ParseIpv4(value)) out.push_back(value);
  }
  return out;
}

DnsServer::DnsServer(const ClusterZone* zone, DnsServerOptions options)
    : zone_(zone), options_(std::move(options)) {}

Result<std::unique_ptr<DnsServer>> DnsServer::Start(const ClusterZone* zone,
                                                    DnsServerOptions options) {
  std::unique_ptr<DnsServer> s(new DnsServer(zone, std::move(options)));
  s->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  uint16_t port = s->options_.port;
  std::vector<std::pair<int, bool>> sockets;  // fd, tcp
  for (const auto& address : s->options_.addresses) {
    int tcp = Bind(SOCK_STREAM, address, port, false);
    if (tcp < 0) {
      for (auto& [fd, t] : sockets) close(fd);
      return MakeStatus(Code::kUnavailable, "cluster DNS: bind tcp {}:{}: {}", address, port,
                        strerror(errno));
    }
    port = PortOf(tcp);
    sockets.emplace_back(tcp, true);
    for (int i = 0; i < std::max(1, s->options_.udp_workers); ++i) {
      int udp = Bind(SOCK_DGRAM, address, port, true);
      if (udp < 0) {
        for (auto& [fd, t] : sockets) close(fd);
        return MakeStatus(Code::kUnavailable, "cluster DNS: bind udp {}:{}: {}", address, port,
                          strerror(errno));
      }
      sockets.emplace_back(udp, false);
    }
  }
  s->port_ = port;
  for (int i = 0; i < std::max(1, s->options_.forwarders); ++i)
    s->forwarders_.emplace_back([self = s.get()] { self->RunForwarder(); });
  for (auto& [fd, tcp] : sockets) {
    s->fds_.push_back(fd);
    DnsServer* self = s.get();
    s->threads_.emplace_back([self, fd = fd, tcp = tcp] {
      if (tcp) {
        self->ServeTcp(fd);
      } else {
        self->ServeUdp(fd);
      }
    });
  }
  return s;
}

DnsServer::~DnsServer() { Stop(); }

void DnsServer::Stop() {
  if (stop_fd_ < 0) return;
  uint64_t one = 1;
  (void)write(stop_fd_, &one, sizeof(one));
  for (auto& t : threads_) t.join();
  threads_.clear();
  {
    std::lock_guard lock(forward_mu_);
    stopping_ = true;
  }
  forward_cv_.notify_all();
  for (auto& t : forwarders_) t.join();
  forwarders_.clear();
  {
    std::lock_guard lock(tcp_mu_);
    for (auto& c : tcp_threads_) c.thread.join();
    tcp_threads_.clear();
  }
  for (int fd : fds_) close(fd);
  fds_.clear();
  close(stop_fd_);
  stop_fd_ = -1;
}

void DnsServer::ServeUdp(int fd) {
  // Under load, queries are drained in batches (recvmmsg/sendmmsg: two system
  // calls for up to 32 queries); poll only when the socket is empty.
  constexpr int kBatch = 32;
  constexpr size_t kMax = 4096;  // Queries are small; a longer one is cut, and FORMERR.
  std::vector<char> bufs(kBatch * kMax);
  sockaddr_in from[kBatch];
  iovec in_iov[kBatch], out_iov[kBatch];
  mmsghdr in[kBatch], out[kBatch];
  std::string answers[kBatch];
  while (true) {
    for (int i = 0; i < kBatch; ++i) {
      in_iov[i] = {bufs.data() + i * kMax, kMax};
      in[i] = {};
      in[i].msg_hdr.msg_name = &from[i];
      in[i].msg_hdr.msg_namelen = sizeof(from[i]);
      in[i].msg_hdr.msg_iov = &in_iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, in, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return;
      pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (poll(p, 2, -1) < 0 && errno != EINTR) return;
      if (p[1].revents) return;
      continue;
    }
    int replies = 0;
    for (int i = 0; i < n; ++i) {
      std::string_view query(bufs.data() + i * kMax, in[i].msg_len);
      sockaddr_storage peer{};
      std::memcpy(&peer, &from[i], std::min<size_t>(sizeof(peer), in[i].msg_hdr.msg_namelen));
      if (!Allowed(peer)) {
        answers[i] = query.size() >= kHeader && !(query[2] & 0x80)
                         ? HeaderOnly(query, LDNS_RCODE_REFUSED)
                         : "";
      } else {
        bool deferred = false;
        answers[i] = Answer(query, false, &deferred);
        if (deferred) {
          std::unique_lock lock(forward_mu_);
          if (forwards_.size() < options_.max_pending_forwards) {
            PendingForward f{std::string(query), {}, in[i].msg_hdr.msg_namelen, fd};
            std::memcpy(&f.from, &from[i], in[i].msg_hdr.msg_namelen);
            forwards_.push_back(std::move(f));
            lock.unlock();
            forward_cv_.notify_one();
            continue;
          }
          lock.unlock();
          answers[i] = HeaderOnly(query, LDNS_RCODE_SERVFAIL);  // Too many waiting already.
        }
      }
      if (answers[i].empty()) continue;
      out_iov[replies] = {answers[i].data(), answers[i].size()};
      out[replies] = {};
      out[replies].msg_hdr.msg_name = &from[i];
      out[replies].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
      out[replies].msg_hdr.msg_iov = &out_iov[replies];
      out[replies].msg_hdr.msg_iovlen = 1;
      ++replies;
    }
    for (int sent = 0; sent < replies;) {
      int r = sendmmsg(fd, out + sent, static_cast<unsigned>(replies - sent), 0);
      if (r <= 0) break;  // A full send buffer drops the rest, as UDP may.
      sent += r;
    }
    // A stop must not wait for an idle moment.
    pollfd stop{stop_fd_, POLLIN, 0};
    if (poll(&stop, 1, 0) > 0) return;
  }
}

void DnsServer::ServeTcp(int fd) {
  while (true) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR) return;
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);
    int conn = accept4(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
    if (conn < 0) continue;
    if (!Allowed(peer)) {
      close(conn);
      continue;
    }
    if (tcp_connections_.load() >= options_.max_tcp_connections) {
      close(conn);  // Bounded: a client that opens more waits for its others to end.
      continue;
    }
    tcp_connections_.fetch_add(1);
    std::lock_guard lock(tcp_mu_);
    std::erase_if(tcp_threads_, [](TcpConnection& c) {
      if (!c.done->load()) return false;
      c.thread.join();
      return true;
    });
    auto done = std::make_shared<std::atomic<bool>>(false);
    tcp_threads_.push_back({std::thread([this, conn, done] {
                              ServeTcpConnection(conn);
                              close(conn);
                              tcp_connections_.fetch_sub(1);
                              done->store(true);
                            }),
                            done});
  }
}

void DnsServer::ServeTcpConnection(int fd) {
  // RFC 7766: length-prefixed messages, several per connection; idle ones close.
  while (true) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(p, 2, 10000) <= 0 || p[1].revents) return;
    unsigned char len[2];
    if (!ReadFull(fd, reinterpret_cast<char*>(len), 2, 2000)) return;
    size_t n = (size_t{len[0]} << 8) | len[1];
    std::string query(n, '\0');
    if (n == 0 || !ReadFull(fd, query.data(), n, 2000)) return;
    std::string answer = Answer(query, true);
    if (answer.empty()) return;
    std::string framed;
    framed.push_back(static_cast<char>(answer.size() >> 8));
    framed.push_back(static_cast<char>(answer.size() & 0xff));
    framed += answer;
    if (!WriteFull(fd, framed)) return;
  }
}

// The cache's key for a query: its bytes after the ID and flags with the
// question's name in lower case — what the answer depends on (the question,
// and the OPT record with its UDP size) — and the transport. Empty when the
// query is not a plain one-question query (those take the decoder's path).
// This only delimits bytes; what they mean is ldns' to decode.
std::string CacheKey(std::string_view query, bool tcp, size_t* name_len) {
  *name_len = QuestionNameLength(query);
  const auto* h = reinterpret_cast<const unsigned char*>(query.data());
  if (*name_len == 0 || (h[2] & 0x78) != 0 || h[4] != 0 || h[5] != 1 || h[6] || h[7] || h[8] ||
      h[9] || h[10] || h[11] > 1 || query.size() < kHeader + *name_len + 4)
    return "";
  std::string key(1, tcp ? 'T' : 'U');
  key.append(query.substr(4));
  std::transform(key.begin() + 1 + 8, key.begin() + 1 + 8 + static_cast<std::ptrdiff_t>(*name_len),
                 key.begin() + 1 + 8,
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return key;
}

bool DnsServer::Allowed(const sockaddr_storage& from) const {
  if (options_.clients.empty()) return true;
  if (from.ss_family != AF_INET) return false;
  uint32_t a = ntohl(reinterpret_cast<const sockaddr_in&>(from).sin_addr.s_addr);
  if ((a >> 24) == 127) return true;
  return std::any_of(options_.clients.begin(), options_.clients.end(),
                     [&](const Ipv4Cidr& c) { return c.Contains(a); });
}

void DnsServer::RunForwarder() {
  while (true) {
    PendingForward f;
    {
      std::unique_lock lock(forward_mu_);
      forward_cv_.wait(lock, [&] { return stopping_ || !forwards_.empty(); });
      if (stopping_) return;
      f = std::move(forwards_.front());
      forwards_.pop_front();
    }
    std::string answer = Answer(f.query, false);
    if (!answer.empty()) {
      sendto(f.fd, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&f.from),
             f.from_len);
    }
  }
}

namespace {

// `wire` with every record's TTL lowered by `age` seconds (not below 0);
// unchanged if it does not decode.
std::string Aged(std::string wire, int64_t age) {
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) !=
      LDNS_STATUS_OK)
    return wire;
  Pkt p(raw);
  for (ldns_rr_list* section :
       {ldns_pkt_answer(p.get()), ldns_pkt_authority(p.get()), ldns_pkt_additional(p.get())}) {
    for (size_t i = 0; i < ldns_rr_list_rr_count(section); ++i) {
      ldns_rr* rr = ldns_rr_list_rr(section, i);
      uint32_t ttl = ldns_rr_ttl(rr);
      ldns_rr_set_ttl(rr, age >= ttl ? 0 : ttl - static_cast<uint32_t>(age));
    }
  }
  std::string aged = Wire(p.get());
  return aged.empty() ? wire : aged;
}

}  // namespace

std::string DnsServer::Answer(std::string_view query, bool tcp, bool* deferred) {
  if (query.size() < kHeader) return "";
  if (query[2] & 0x80) return "";  // A response: never answered (no loops).
  size_t name_len = 0;
  const std::string key = CacheKey(query, tcp, &name_len);
  auto from_cache = [&](std::string wire) {
    // The client's ID, RD bit and spelling of the name (DNS 0x20).
    wire[0] = query[0];
    wire[1] = query[1];
    wire[2] = static_cast<char>((wire[2] & ~0x01) | (query[2] & 0x01));
    if (name_len && wire.size() >= kHeader + name_len)
      std::copy_n(query.data() + kHeader, name_len, wire.data() + kHeader);
    return wire;
  };
  const uint64_t generation = zone_->generation();
  const Clock::TimePoint now = options_.clock->Now();
  if (!key.empty()) {
    std::shared_lock lock(cache_mu_);
    if (auto it = cache_.find(key);
        it != cache_.end() && it->second.generation == generation && it->second.expires > now) {
      if (!it->second.forwarded) return from_cache(it->second.wire);
      // An upstream's answer says how long it is still good for (RFC 1035 7.4).
      auto age = std::chrono::duration_cast<std::chrono::seconds>(now - it->second.stored);
      std::string wire = it->second.wire;
      lock.unlock();
      return from_cache(age.count() > 0 ? Aged(std::move(wire), age.count()) : std::move(wire));
    }
  }
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(query.data()), query.size()) !=
      LDNS_STATUS_OK) {
    return HeaderOnly(query, LDNS_RCODE_FORMERR);
  }
  Pkt q(raw);
  if (ldns_pkt_get_opcode(q.get()) != LDNS_PACKET_QUERY)
    return HeaderOnly(query, LDNS_RCODE_NOTIMPL);
  if (ldns_pkt_qdcount(q.get()) != 1) return HeaderOnly(query, LDNS_RCODE_FORMERR);
  const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(q.get()), 0);
  char* owner_text = ldns_rdf2str(ldns_rr_owner(question));
  std::string qname = Fqdn(owner_text ? owner_text : "");
  free(owner_text);
  auto qtype = static_cast<uint16_t>(ldns_rr_get_type(question));
  auto qclass = static_cast<uint16_t>(ldns_rr_get_class(question));
  const bool edns = ldns_pkt_edns(q.get());
  const size_t limit =
      tcp ? 65535
          : std::max<size_t>(
                512, edns ? std::min<uint16_t>(ldns_pkt_edns_udp_size(q.get()), 4096) : 512);

  std::vector<Record> records;
  dns::Answer found =
      qclass == LDNS_RR_CLASS_IN ? zone_->Lookup(qname, qtype, &records) : dns::Answer::kNotOurs;
  std::string wire;
  std::chrono::seconds ttl(options_.ttl);
  if (found == dns::Answer::kNotOurs) {
    if (deferred && !options_.upstreams.empty()) {
      *deferred = true;  // The caller hands it to a forwarder.
      return "";
    }
    wire = Forward(query, tcp);
    if (wire.empty()) {
      std::string fail = HeaderOnly(query, LDNS_RCODE_SERVFAIL);
      return fail;
    }
    // Cached for the least TTL of its answers (at most 30 s; 5 s for none).
    ldns_pkt* r = nullptr;
    if (ldns_wire2pkt(&r, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) !=
        LDNS_STATUS_OK)
      return wire;
    Pkt reply(r);
    uint32_t least = 30;
    const ldns_rr_list* answers = ldns_pkt_answer(reply.get());
    for (size_t i = 0; i < ldns_rr_list_rr_count(answers); ++i)
      least = std::min(least, ldns_rr_ttl(ldns_rr_list_rr(answers, i)));
    if (ldns_rr_list_rr_count(answers) == 0) least = 5;
    ttl = std::chrono::seconds(least);
    if (ldns_pkt_get_rcode(reply.get()) == LDNS_RCODE_SERVFAIL || ldns_pkt_tc(reply.get()))
      return wire;  // Not cached.
  } else {
    Pkt r(ldns_pkt_new());
    ldns_pkt_set_id(r.get(), 0);
    ldns_pkt_set_qr(r.get(), true);
    ldns_pkt_set_aa(r.get(), true);
    ldns_pkt_set_ra(r.get(), true);
    ldns_pkt_set_rd(r.get(), ldns_pkt_rd(q.get()));
    ldns_pkt_set_opcode(r.get(), LDNS_PACKET_QUERY);
    ldns_pkt_set_rcode(r.get(),
                       found == dns::Answer::kNxDomain ? LDNS_RCODE_NXDOMAIN : LDNS_RCODE_NOERROR);
    ldns_pkt_push_rr(r.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(question));
    if (edns) ldns_pkt_set_edns_udp_size(r.get(), kOurUdpSize);
    static const char* kTypes[] = {nullptr, "A", nullptr, nullptr, nullptr, "CNAME"};
    for (const auto& rec : records) {
      const char* type = rec.type == 12   ? "PTR"
                         : rec.type == 16 ? "TXT"
                         : rec.type == 33 ? "SRV"
                         : rec.type < 6   ? kTypes[rec.type]
                                          : nullptr;
      if (!type) continue;
      if (ldns_rr* rr =
              MakeRr(fmt::format("{} {} IN {} {}", rec.name, options_.ttl, type, rec.rdata)))
        ldns_pkt_push_rr(r.get(), LDNS_SECTION_ANSWER, rr);
    }
    if (found != dns::Answer::kFound) {
      // The zone's SOA: its minimum is the negative answer's TTL (RFC 2308).
      const std::string& zone = zone_->domain();
      std::string_view apex = qname.ends_with(".in-addr.arpa.") ? std::string_view("in-addr.arpa.")
                                                                : std::string_view(zone);
      if (ldns_rr* soa =
              MakeRr(fmt::format("{} {} IN SOA ns.dns.{} hostmaster.{} {} 7200 1800 86400 {}", apex,
                                 options_.ttl, zone, zone, generation % 4294967295u, options_.ttl)))
        ldns_pkt_push_rr(r.get(), LDNS_SECTION_AUTHORITY, soa);
    }
    wire = Wire(r.get());
    if (wire.size() > limit) {
      // Too big for the client's UDP: the question alone, with TC (RFC 2181 9).
      ldns_rr_list_deep_free(ldns_pkt_answer(r.get()));
      ldns_pkt_set_answer(r.get(), ldns_rr_list_new());
      ldns_pkt_set_ancount(r.get(), 0);
      ldns_rr_list_deep_free(ldns_pkt_authority(r.get()));
      ldns_pkt_set_authority(r.get(), ldns_rr_list_new());
      ldns_pkt_set_nscount(r.get(), 0);
      ldns_pkt_set_tc(r.get(), true);
      wire = Wire(r.get());
    }
  }
  if (!key.empty()) {
    std::unique_lock lock(cache_mu_);
    if (cache_.size() >= options_.cache_entries) cache_.erase(cache_.begin());
    cache_[key] = {wire, generation, now, now + ttl, found == dns::Answer::kNotOurs};
  }
  return from_cache(std::move(wire));
}

std::string DnsServer::Forward(std::string_view query, bool tcp) {
  for (const auto& upstream : options_.upstreams) {
    sockaddr_in to{};
    if (!ParseUpstream(upstream, &to)) continue;
    int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    std::string reply;
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) {
      if (tcp) {
        std::string framed;
        framed.push_back(static_cast<char>(query.size() >> 8));
        framed.push_back(static_cast<char>(query.size() & 0xff));
        framed.append(query);
        unsigned char len[2];
        if (WriteFull(fd, framed) && ReadFull(fd, reinterpret_cast<char*>(len), 2, 2000)) {
          reply.resize((size_t{len[0]} << 8) | len[1]);
          if (!ReadFull(fd, reply.data(), reply.size(), 2000)) reply.clear();
        }
      } else if (send(fd, query.data(), query.size(), 0) == static_cast<ssize_t>(query.size())) {
        pollfd p{fd, POLLIN, 0};
        char buf[65536];
        while (poll(&p, 1, 2000) > 0) {
          ssize_t n = recv(fd, buf, sizeof(buf), 0);
          if (n < static_cast<ssize_t>(kHeader)) break;
          if (buf[0] == query[0] && buf[1] == query[1]) {  // Its answer, not a stray.
            reply.assign(buf, static_cast<size_t>(n));
            break;
          }
        }
      }
    }
    close(fd);
    if (!reply.empty()) return reply;
  }
  return "";
}

}  // namespace kiso::dns
