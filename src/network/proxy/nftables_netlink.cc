// Nftables::Apply's work (in kiso-netfilter.so): a Transaction as one nf_tables netlink batch,
// built with libnftnl and sent with libmnl. Each statement becomes the expressions nft itself
// compiles it to (`nft --debug=netlink` shows them), so `nft list` prints what a script would have
// made; the rules_test checks exactly that.
#include "network/proxy/nftables_netlink.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

namespace kiso::network::proxy {

namespace {

// Upper bound of one message: elements go at most kElementsPerMessage to a
// message, names are at most NFT_NAME_MAXLEN, so no message comes near it.
constexpr size_t kMaxMessage = size_t{64} * 1024;
constexpr size_t kElementsPerMessage = 64;

struct RuleFree {
  void operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
};
struct SetFree {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};
struct ChainFree {
  void operator()(nftnl_chain* c) const { nftnl_chain_free(c); }
};
using RulePtr = std::unique_ptr<nftnl_rule, RuleFree>;
using SetPtr = std::unique_ptr<nftnl_set, SetFree>;
using ChainPtr = std::unique_ptr<nftnl_chain, ChainFree>;

// The kernel's encoding of a map key's parts: each padded to 4 bytes.
void PutAddress(std::vector<uint8_t>& key, const std::string& ip, bool& ok) {
  std::array<uint8_t, 4> a{};
  if (inet_pton(AF_INET, ip.c_str(), a.data()) != 1) ok = false;
  key.insert(key.end(), a.begin(), a.end());
}

int ProtocolNumber(std::string_view p) {
  if (p == "tcp") return IPPROTO_TCP;
  if (p == "udp") return IPPROTO_UDP;
  if (p == "sctp") return IPPROTO_SCTP;
  return -1;
}

// A batch under construction: messages back to back in one buffer, sent in
// one sendmsg() so that the kernel applies them as one transaction.
class Batch {
 public:
  explicit Batch(std::string_view table) : table_(table) {
    Message("batch begin", [&](char* at) { return nftnl_batch_begin(at, seq_); });
  }

  const std::string& table() const { return table_; }

  // Appends one message; `what` names it in an error.
  template <class Build>
  void Add(uint16_t type, uint16_t flags, const std::string& what, Build build) {
    Message(what, [&](char* at) {
      nlmsghdr* nlh = nftnl_nlmsg_build_hdr(at, type, NFPROTO_IPV4, flags, seq_);
      build(nlh);
      return nlh;
    });
  }

  std::vector<char>& Finish() {
    Message("batch end", [&](char* at) { return nftnl_batch_end(at, seq_); });
    return buf_;
  }

  // The message the kernel answered about.
  std::string What(uint32_t seq) const {
    return seq < what_.size() ? what_[seq] : fmt::format("message {}", seq);
  }

  uint32_t NextSetId() { return ++set_id_; }

 private:
  template <class Write>
  void Message(const std::string& what, Write write) {
    const size_t at = buf_.size();
    buf_.resize(at + kMaxMessage);
    nlmsghdr* nlh = write(buf_.data() + at);
    if (nlh->nlmsg_len > kMaxMessage) std::abort();  // A broken bound above: memory is gone.
    buf_.resize(at + NLMSG_ALIGN(nlh->nlmsg_len));
    what_.resize(seq_ + 1);
    what_[seq_] = what;
    ++seq_;
  }

  std::string table_;
  std::vector<char> buf_;
  std::vector<std::string> what_;  // By sequence number.
  uint32_t seq_ = 0;
  uint32_t set_id_ = 0;
};

// Expressions, each as nft writes it.
nftnl_expr* Expr(const char* name) { return nftnl_expr_alloc(name); }

nftnl_expr* SourceAddress(uint32_t dreg) {
  nftnl_expr* e = Expr("payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, 12);  // ip saddr
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, 4);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
  return e;
}

nftnl_expr* Equals(uint32_t sreg, const void* data, uint32_t len) {
  nftnl_expr* e = Expr("cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  return e;
}

nftnl_expr* Verdict(int code, const std::string& chain) {
  nftnl_expr* e = Expr("immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(code));
  nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain.c_str());
  return e;
}

nftnl_expr* Constant(uint32_t dreg, const void* data, uint32_t len) {
  nftnl_expr* e = Expr("immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
  nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
  return e;
}

nftnl_expr* Lookup(uint32_t sreg, const std::string& set, uint32_t set_id) {
  nftnl_expr* e = Expr("lookup");
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set.c_str());
  if (set_id != 0) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
  return e;
}

class Builder {
 public:
  explicit Builder(Batch& batch) : b_(batch) {}

  // A set this batch adds: later references carry its ID as nft's do.
  void NoteSet(const std::string& name, uint32_t id) { set_ids_[name] = id; }
  uint32_t SetId(const std::string& name) const {
    auto it = set_ids_.find(name);
    return it == set_ids_.end() ? 0 : it->second;
  }

  // The anonymous verdict map of a Pick: added to the batch before its
  // rule; returns its ID. Ranges make it an interval map, whose keys the
  // kernel compares in network byte order.
  uint32_t AnonymousMap(const rule::Pick& pick, bool interval) {
    const uint32_t id = b_.NextSetId();
    SetPtr set(nftnl_set_alloc());
    nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, b_.table().c_str());
    nftnl_set_set_str(set.get(), NFTNL_SET_NAME, "__map%d");
    nftnl_set_set_u32(set.get(), NFTNL_SET_ID, id);
    nftnl_set_set_u32(
        set.get(), NFTNL_SET_FLAGS,
        NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP | (interval ? NFT_SET_INTERVAL : 0));
    // nft's "mark" for a mark's map, else its "integer".
    constexpr uint32_t kInteger = 4;
    constexpr uint32_t kMark = 19;
    nftnl_set_set_u32(set.get(), NFTNL_SET_KEY_TYPE,
                      pick.by == rule::Pick::By::kMark ? kMark : kInteger);
    nftnl_set_set_u32(set.get(), NFTNL_SET_KEY_LEN, 4);
    nftnl_set_set_u32(set.get(), NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
    nftnl_set_set_u32(set.get(), NFTNL_SET_DATA_LEN, 0);
    nftnl_set_set_u32(set.get(), NFTNL_SET_DESC_SIZE,
                      static_cast<uint32_t>(pick.slots.size() + (interval ? 1 : 0)));
    // What nft records for its own listing: the key is a host-order integer.
    std::unique_ptr<nftnl_udata_buf, void (*)(const nftnl_udata_buf*)> udata(
        nftnl_udata_buf_alloc(64), nftnl_udata_buf_free);
    nftnl_udata_put_u32(udata.get(), NFTNL_UDATA_SET_KEYBYTEORDER, 1);
    nftnl_udata_put_u32(udata.get(), NFTNL_UDATA_SET_DATABYTEORDER, 0);
    nftnl_set_set_data(set.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(udata.get()),
                       nftnl_udata_buf_len(udata.get()));
    b_.Add(NFT_MSG_NEWSET, NLM_F_CREATE, "add anonymous map",
           [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, set.get()); });

    auto key = [&](uint32_t v) { return interval ? htonl(v) : v; };
    std::vector<nftnl_set_elem*> elems;
    for (size_t i = 0; i < pick.slots.size(); ++i) {
      const auto& slot = pick.slots[i];
      nftnl_set_elem* e = nftnl_set_elem_alloc();
      uint32_t k = key(slot.first);
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &k, sizeof k);
      nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, static_cast<uint32_t>(NFT_GOTO));
      nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, slot.chain.c_str());
      elems.push_back(e);
      const bool gap = i + 1 < pick.slots.size() && pick.slots[i + 1].first != slot.last + 1;
      if (interval && (gap || i + 1 == pick.slots.size())) {
        nftnl_set_elem* end = nftnl_set_elem_alloc();
        uint32_t k2 = key(slot.last + 1);
        nftnl_set_elem_set(end, NFTNL_SET_ELEM_KEY, &k2, sizeof k2);
        nftnl_set_elem_set_u32(end, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        elems.push_back(end);
      }
    }
    Elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, "__map%d", id, elems, "add anonymous map elements");
    return id;
  }

  // Sends `elems` (owned from here on) to set `name` in messages of at most
  // kElementsPerMessage.
  void Elements(uint16_t type, uint16_t flags, const std::string& name, uint32_t id,
                std::vector<nftnl_set_elem*>& elems, const std::string& what) {
    for (size_t at = 0; at < elems.size(); at += kElementsPerMessage) {
      SetPtr set(nftnl_set_alloc());
      nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, b_.table().c_str());
      nftnl_set_set_str(set.get(), NFTNL_SET_NAME, name.c_str());
      if (id != 0) nftnl_set_set_u32(set.get(), NFTNL_SET_ID, id);
      for (size_t i = at; i < std::min(elems.size(), at + kElementsPerMessage); ++i)
        nftnl_set_elem_add(set.get(), elems[i]);
      b_.Add(type, flags, what,
             [&](nlmsghdr* nlh) { nftnl_set_elems_nlmsg_build_payload(nlh, set.get()); });
    }
    elems.clear();
  }

  // The expressions of `r`, appended to `out`; a Pick's map goes to the batch first.
  void Compile(const Rule& r, nftnl_rule* out, bool& ok) {
    auto add = [&](nftnl_expr* e) { nftnl_rule_add_expr(out, e); };
    if (const auto* x = std::get_if<rule::JumpIfSource>(&r)) {
      std::array<uint8_t, 4> a{};
      if (inet_pton(AF_INET, x->ip.c_str(), a.data()) != 1) ok = false;
      add(SourceAddress(NFT_REG_1));
      add(Equals(NFT_REG_1, a.data(), 4));
      add(Verdict(NFT_JUMP, x->chain));
    } else if (const auto* x = std::get_if<rule::JumpIfLocalSource>(&r)) {
      nftnl_expr* fib = Expr("fib");
      nftnl_expr_set_u32(fib, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_SADDR);
      nftnl_expr_set_u32(fib, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
      nftnl_expr_set_u32(fib, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
      add(fib);
      uint32_t local = RTN_LOCAL;
      add(Equals(NFT_REG_1, &local, sizeof local));
      add(Verdict(NFT_JUMP, x->chain));
    } else if (const auto* x = std::get_if<rule::Jump>(&r)) {
      add(Verdict(NFT_JUMP, x->chain));
    } else if (const auto* x = std::get_if<rule::Goto>(&r)) {
      add(Verdict(NFT_GOTO, x->chain));
    } else if (const auto* x = std::get_if<rule::RememberSource>(&r)) {
      add(SourceAddress(NFT_REG_1));
      nftnl_expr* e = Expr("dynset");
      nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
      nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
      nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, x->set.c_str());
      if (uint32_t id = SetId(x->set)) nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SET_ID, id);
      add(e);
    } else if (const auto* x = std::get_if<rule::GotoIfRemembered>(&r)) {
      add(SourceAddress(NFT_REG_1));
      add(Lookup(NFT_REG_1, x->set, SetId(x->set)));
      add(Verdict(NFT_GOTO, x->chain));
    } else if (const auto* x = std::get_if<rule::Dnat>(&r)) {
      int proto = ProtocolNumber(x->protocol);
      std::array<uint8_t, 4> a{};
      if (proto < 0 || inet_pton(AF_INET, x->ip.c_str(), a.data()) != 1 || x->port <= 0 ||
          x->port > 65535)
        ok = false;
      nftnl_expr* meta = Expr("meta");
      nftnl_expr_set_u32(meta, NFTNL_EXPR_META_KEY, NFT_META_L4PROTO);
      nftnl_expr_set_u32(meta, NFTNL_EXPR_META_DREG, NFT_REG_1);
      add(meta);
      auto p8 = static_cast<uint8_t>(proto);
      add(Equals(NFT_REG_1, &p8, 1));
      add(Constant(NFT_REG_1, a.data(), 4));
      uint16_t port = htons(static_cast<uint16_t>(x->port));
      add(Constant(NFT_REG_2, &port, 2));
      nftnl_expr* nat = Expr("nat");
      nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
      nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
      nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
      nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
      nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
      add(nat);
    } else if (const auto* x = std::get_if<rule::Pick>(&r)) {
      bool interval = false;
      for (const auto& s : x->slots) interval = interval || s.first != s.last;
      const uint32_t id = AnonymousMap(*x, interval);
      if (x->by == rule::Pick::By::kMark) {
        nftnl_expr* meta = Expr("meta");
        nftnl_expr_set_u32(meta, NFTNL_EXPR_META_KEY, NFT_META_MARK);
        nftnl_expr_set_u32(meta, NFTNL_EXPR_META_DREG, NFT_REG_1);
        add(meta);
        nftnl_expr* bits = Expr("bitwise");
        const uint32_t mask = kBalancerMarkMask;
        const uint32_t zero = 0;
        nftnl_expr_set_u32(bits, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
        nftnl_expr_set_u32(bits, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
        nftnl_expr_set_u32(bits, NFTNL_EXPR_BITWISE_LEN, sizeof mask);
        nftnl_expr_set(bits, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof mask);
        nftnl_expr_set(bits, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof zero);
        add(bits);
      } else if (x->by == rule::Pick::By::kSourceHash) {
        add(SourceAddress(NFT_REG_2));
        nftnl_expr* h = Expr("hash");
        nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS);
        nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_SREG, NFT_REG_2);
        nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_DREG, NFT_REG_1);
        nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_LEN, 4);
        nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_MODULUS, x->modulus);
        nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_SEED, kHashSeed);
        add(h);
      } else {
        nftnl_expr* ng = Expr("numgen");
        nftnl_expr_set_u32(ng, NFTNL_EXPR_NG_DREG, NFT_REG_1);
        nftnl_expr_set_u32(ng, NFTNL_EXPR_NG_TYPE,
                           x->by == rule::Pick::By::kRandom ? NFT_NG_RANDOM : NFT_NG_INCREMENTAL);
        nftnl_expr_set_u32(ng, NFTNL_EXPR_NG_MODULUS, x->modulus);
        add(ng);
      }
      if (interval) {
        nftnl_expr* bo = Expr("byteorder");
        nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_SREG, NFT_REG_1);
        nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_DREG, NFT_REG_1);
        nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
        nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_LEN, 4);
        nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_SIZE, 4);
        add(bo);
      }
      nftnl_expr* lookup = Lookup(NFT_REG_1, "__map%d", id);
      nftnl_expr_set_u32(lookup, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
      add(lookup);
    }
  }

 private:
  Batch& b_;
  std::map<std::string, uint32_t> set_ids_;
};

// The elements of `list`, keyed as the maps are typed; false for a key that
// does not parse.
bool MapElements(const std::vector<MapElement>& list, bool with_verdict,
                 std::map<std::string, std::vector<nftnl_set_elem*>>& out) {
  bool ok = true;
  for (const auto& m : list) {
    std::vector<uint8_t> key;
    if (!m.ip.empty()) PutAddress(key, m.ip, ok);
    int proto = ProtocolNumber(m.protocol);
    if (proto < 0 || m.port <= 0 || m.port > 65535) ok = false;
    key.insert(key.end(), {static_cast<uint8_t>(proto), 0, 0, 0});
    key.insert(key.end(),
               {static_cast<uint8_t>(m.port >> 8), static_cast<uint8_t>(m.port & 0xff), 0, 0});
    nftnl_set_elem* e = nftnl_set_elem_alloc();
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key.data(), static_cast<uint32_t>(key.size()));
    if (with_verdict) {
      nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, static_cast<uint32_t>(NFT_GOTO));
      nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, m.chain.c_str());
    }
    out[m.map].push_back(e);
  }
  return ok;
}

void FreeElements(std::map<std::string, std::vector<nftnl_set_elem*>>& m) {
  for (auto& [name, elems] : m) {
    for (auto* e : elems) nftnl_set_elem_free(e);
  }
  m.clear();
}

void Chain(Batch& b, uint16_t type, uint16_t flags, const std::string& name,
           const std::string& what) {
  ChainPtr c(nftnl_chain_alloc());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, b.table().c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name.c_str());
  b.Add(type, flags, what, [&](nlmsghdr* nlh) { nftnl_chain_nlmsg_build_payload(nlh, c.get()); });
}

// Flush: a rule deletion that names only the chain.
void FlushChain(Batch& b, const std::string& name) {
  RulePtr r(nftnl_rule_alloc());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, b.table().c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, name.c_str());
  b.Add(NFT_MSG_DELRULE, 0, "flush chain " + name,
        [&](nlmsghdr* nlh) { nftnl_rule_nlmsg_build_payload(nlh, r.get()); });
}

}  // namespace

Status SendBatch(mnl_socket*& netlink, std::string_view table, const Transaction& tx) {
  if (tx.empty()) return Status::Ok();
  Batch b(table);
  Builder build(b);
  bool ok = true;

  std::map<std::string, std::vector<nftnl_set_elem*>> removed, added;
  ok = MapElements(tx.removed, false, removed) && ok;
  ok = MapElements(tx.added, true, added) && ok;
  for (auto& [map, elems] : removed)
    build.Elements(NFT_MSG_DELSETELEM, 0, map, 0, elems, "delete element from " + map);
  for (const auto& s : tx.sets) {
    SetPtr set(nftnl_set_alloc());
    const uint32_t id = b.NextSetId();
    build.NoteSet(s.name, id);
    nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, b.table().c_str());
    nftnl_set_set_str(set.get(), NFTNL_SET_NAME, s.name.c_str());
    nftnl_set_set_u32(set.get(), NFTNL_SET_ID, id);
    nftnl_set_set_u32(set.get(), NFTNL_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
    nftnl_set_set_u32(set.get(), NFTNL_SET_KEY_TYPE, 7);  // nft's "ipv4_addr".
    nftnl_set_set_u32(set.get(), NFTNL_SET_KEY_LEN, 4);
    nftnl_set_set_u64(set.get(), NFTNL_SET_TIMEOUT,
                      static_cast<uint64_t>(s.timeout_seconds) * 1000);
    b.Add(NFT_MSG_NEWSET, NLM_F_CREATE, "add set " + s.name,
          [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, set.get()); });
  }
  for (const auto& c : tx.chains) {
    Chain(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, c.name, "add chain " + c.name);
    FlushChain(b, c.name);
  }
  for (const auto& c : tx.chains) {
    for (const auto& r : c.rules) {
      RulePtr rule(nftnl_rule_alloc());
      nftnl_rule_set_str(rule.get(), NFTNL_RULE_TABLE, b.table().c_str());
      nftnl_rule_set_str(rule.get(), NFTNL_RULE_CHAIN, c.name.c_str());
      build.Compile(r, rule.get(), ok);
      b.Add(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
            fmt::format("add rule {} {}", c.name, RuleText(r)),
            [&](nlmsghdr* nlh) { nftnl_rule_nlmsg_build_payload(nlh, rule.get()); });
    }
  }
  for (auto& [map, elems] : added)
    build.Elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, map, 0, elems, "add element to " + map);
  for (const auto& c : tx.gone_chains) FlushChain(b, c);
  for (const auto& c : tx.gone_chains) Chain(b, NFT_MSG_DELCHAIN, 0, c, "delete chain " + c);
  for (const auto& s : tx.gone_sets) {
    SetPtr set(nftnl_set_alloc());
    nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, b.table().c_str());
    nftnl_set_set_str(set.get(), NFTNL_SET_NAME, s.c_str());
    b.Add(NFT_MSG_DELSET, 0, "delete set " + s,
          [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, set.get()); });
  }
  FreeElements(removed);
  FreeElements(added);
  if (!ok) {
    return MakeStatus(Code::kInvalidArgument,
                      "nftables: a transaction on {} has a bad address, protocol or port", table);
  }

  if (netlink == nullptr) {
    netlink = mnl_socket_open(NETLINK_NETFILTER);
    if (netlink == nullptr)
      return MakeStatus(Code::kInternal, "nftables: netlink socket: {}", std::strerror(errno));
    if (mnl_socket_bind(netlink, 0, MNL_SOCKET_AUTOPID) < 0) {
      int err = errno;
      mnl_socket_close(netlink);
      netlink = nullptr;
      return MakeStatus(Code::kInternal, "nftables: netlink bind: {}", std::strerror(err));
    }
    int on = 1;
    // Errors without a copy of the refused message; with the kernel's reason.
    (void)mnl_socket_setsockopt(netlink, NETLINK_CAP_ACK, &on, sizeof on);
    (void)mnl_socket_setsockopt(netlink, NETLINK_EXT_ACK, &on, sizeof on);
  }
  std::vector<char>& buf = b.Finish();
  const int fd = mnl_socket_get_fd(netlink);
  // The whole batch is one datagram: the send buffer must hold it.
  int sndbuf = 0;
  socklen_t len = sizeof sndbuf;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 &&
      static_cast<size_t>(sndbuf) < buf.size() + 4096) {
    int want = static_cast<int>(buf.size() + 4096);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
  }
  if (mnl_socket_sendto(netlink, buf.data(), buf.size()) < 0) {
    return MakeStatus(Code::kInternal, "nftables: sending a batch of {} bytes: {}", buf.size(),
                      std::strerror(errno));
  }
  // The kernel handles the batch inside sendmsg(): whatever it has to say
  // (only errors: no message asks for an acknowledgement) is queued already.
  std::vector<char> in(MNL_SOCKET_BUFFER_SIZE * 4);
  std::string error;
  for (;;) {
    ssize_t n = recv(fd, in.data(), in.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (error.empty())
        error = fmt::format("reading the kernel's answer: {}", std::strerror(errno));
      break;
    }
    auto remaining = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(in.data()); mnl_nlmsg_ok(nlh, remaining);
         nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (e->error == 0 || !error.empty()) continue;
      error = fmt::format("{}: {}", b.What(e->msg.nlmsg_seq), std::strerror(-e->error));
    }
  }
  if (!error.empty()) return MakeStatus(Code::kInternal, "nftables: table {}: {}", table, error);
  return Status::Ok();
}

}  // namespace kiso::network::proxy
