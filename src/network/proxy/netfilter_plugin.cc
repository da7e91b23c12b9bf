// Nftables and conntrack.h through kiso-netfilter.so, loaded on first use.
#include <arpa/inet.h>
#include <netinet/in.h>

#include "network/proxy/conntrack.h"
#include "network/proxy/nftables.h"

namespace kiso::network::proxy {

namespace {

Result<void*> Entry(const char* symbol) {
  return PluginSymbol("kiso-netfilter.so", KISO_NETFILTER_PLUGIN_BUILT, symbol);
}

}  // namespace

Nftables::Nftables() = default;
Nftables::~Nftables() = default;

Result<Nftables::Kernel*> Nftables::Loaded() {
  if (kernel_ == nullptr) {
    KISO_ASSIGN_OR_RETURN(void* entry, Entry("KisoNewNftables"));
    Result<std::unique_ptr<Kernel>> made = Status(Code::kInternal, "the plugin answered nothing");
    reinterpret_cast<decltype(&KisoNewNftables)>(entry)(&made);
    if (!made.ok()) return made.status();
    kernel_ = std::move(*made);
  }
  return kernel_.get();
}

Status Nftables::Run(const std::string& script) {
  KISO_ASSIGN_OR_RETURN(Kernel * kernel, Loaded());
  return kernel->Run(script);
}

Status Nftables::Apply(std::string_view table, const Transaction& tx) {
  KISO_ASSIGN_OR_RETURN(Kernel * kernel, Loaded());
  return kernel->Apply(table, tx);
}

Result<std::string> Nftables::List(const std::string& command) {
  KISO_ASSIGN_OR_RETURN(Kernel * kernel, Loaded());
  return kernel->List(command);
}

Status ForEachFlow(const std::function<void(const Flow&)>& visit) {
  KISO_ASSIGN_OR_RETURN(void* entry, Entry("KisoForEachFlow"));
  Status out;
  reinterpret_cast<decltype(&KisoForEachFlow)>(entry)(&visit, &out);
  return out;
}

Result<int> DeleteFlows(const std::function<bool(const Flow&)>& doomed) {
  KISO_ASSIGN_OR_RETURN(void* entry, Entry("KisoDeleteFlows"));
  Result<int> out = Status(Code::kInternal, "the plugin answered nothing");
  reinterpret_cast<decltype(&KisoDeleteFlows)>(entry)(&doomed, &out);
  return out;
}

Result<int> DeleteUdpFlowsTo(const std::string& ip, uint16_t port) {
  in_addr addr{};
  if (inet_pton(AF_INET, ip.c_str(), &addr) != 1)
    return MakeStatus(Code::kInvalidArgument, "conntrack: {:?} is no IPv4 address", ip);
  const uint32_t want = ntohl(addr.s_addr);
  return DeleteFlows([&](const Flow& f) {
    return f.protocol == IPPROTO_UDP && f.dnat && f.reply_src == want && f.reply_sport == port;
  });
}

}  // namespace kiso::network::proxy
