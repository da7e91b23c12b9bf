#include "store/etcd_store.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>

#include <climits>
#include <thread>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "store/watch_channel.h"

namespace kiso::store {

namespace pb = etcdserverpb;

struct EtcdStore::Impl {
  Options options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Lease::Stub> lease;

  void Prepare(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() + options.timeout);
    ctx->set_wait_for_ready(true);
  }

  // One unary call with the per-call deadline; `what` names it in errors.
  template <typename Stub, typename Request, typename Response>
  Status Call(Stub* stub,
              grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
              const Request& request, Response* response, std::string_view what) const {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    grpc::Status s = (stub->*method)(&ctx, request, response);
    return s.ok() ? Status::Ok() : Error(s, what);
  }

  // etcd reports most conditions in the message; map those first, then the code.
  Status Error(const grpc::Status& s, std::string_view what) const {
    const std::string& m = s.error_message();
    std::string message = fmt::format("etcd {}: {}: {}", options.endpoints, what, m);
    auto has = [&](std::string_view needle) { return m.find(needle) != std::string::npos; };
    if (has("required revision has been compacted")) return Status(Code::kCompacted, message);
    if (has("required revision is a future revision"))
      return Status(Code::kInvalidArgument, message);
    if (has("requested lease not found")) return Status(Code::kNotFound, message);
    if (has("database space exceeded")) return Status(Code::kResourceExhausted, message);
    switch (s.error_code()) {
      case grpc::StatusCode::INVALID_ARGUMENT:
      case grpc::StatusCode::OUT_OF_RANGE:
      case grpc::StatusCode::FAILED_PRECONDITION:
        return Status(Code::kInvalidArgument, message);
      case grpc::StatusCode::NOT_FOUND:
        return Status(Code::kNotFound, message);
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        return Status(Code::kResourceExhausted, message);
      case grpc::StatusCode::CANCELLED:
        return Status(Code::kCancelled, message);
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return Status(Code::kUnavailable, message);
      default:
        return Status(Code::kInternal, message);
    }
  }
};

namespace {

KeyValue FromProto(const mvccpb::KeyValue& kv) {
  return {kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()};
}

void SetRange(const KeyRange& range, std::string* key, std::string* range_end) {
  *key = range.key;
  *range_end = range.end;  // etcd's encoding is ours: "" single key, "\0" to the end.
}

pb::RequestOp ToProto(const TxnOp& op) {
  pb::RequestOp out;
  switch (op.type) {
    case TxnOp::Type::kPut: {
      auto* put = out.mutable_request_put();
      put->set_key(op.range.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      put->set_prev_kv(op.prev_kv);
      break;
    }
    case TxnOp::Type::kDelete: {
      auto* del = out.mutable_request_delete_range();
      SetRange(op.range, del->mutable_key(), del->mutable_range_end());
      del->set_prev_kv(op.prev_kv);
      break;
    }
    case TxnOp::Type::kRange: {
      auto* get = out.mutable_request_range();
      SetRange(op.range, get->mutable_key(), get->mutable_range_end());
      get->set_limit(op.options.limit);
      get->set_count_only(op.options.count_only);
      break;
    }
  }
  return out;
}

pb::Compare ToProto(const Compare& c) {
  pb::Compare out;
  out.set_key(c.key);
  switch (c.op) {
    case Compare::Op::kEqual:
      out.set_result(pb::Compare::EQUAL);
      break;
    case Compare::Op::kNotEqual:
      out.set_result(pb::Compare::NOT_EQUAL);
      break;
    case Compare::Op::kGreater:
      out.set_result(pb::Compare::GREATER);
      break;
    case Compare::Op::kLess:
      out.set_result(pb::Compare::LESS);
      break;
  }
  switch (c.target) {
    case Compare::Target::kVersion:
      out.set_target(pb::Compare::VERSION);
      out.set_version(c.number);
      break;
    case Compare::Target::kCreateRevision:
      out.set_target(pb::Compare::CREATE);
      out.set_create_revision(c.number);
      break;
    case Compare::Target::kModRevision:
      out.set_target(pb::Compare::MOD);
      out.set_mod_revision(c.number);
      break;
    case Compare::Target::kValue:
      out.set_target(pb::Compare::VALUE);
      out.set_value(c.value);
      break;
    case Compare::Target::kLease:
      out.set_target(pb::Compare::LEASE);
      out.set_lease(c.number);
      break;
  }
  return out;
}

// gRPC target for "host:port[,host:port]": a static address list when every
// host is an IP literal (gRPC then fails over between them), DNS otherwise.
std::string GrpcTarget(const std::string& endpoints) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= endpoints.size()) {
    size_t comma = endpoints.find(',', start);
    if (comma == std::string::npos) comma = endpoints.size();
    std::string ep = endpoints.substr(start, comma - start);
    if (ep.starts_with("localhost:")) ep = "127.0.0.1" + ep.substr(9);
    if (!ep.empty()) parts.push_back(ep);
    start = comma + 1;
  }
  bool all_ip = !parts.empty();
  for (const auto& p : parts) {
    in_addr addr{};
    all_ip = all_ip && inet_pton(AF_INET, p.substr(0, p.rfind(':')).c_str(), &addr) == 1;
  }
  if (!all_ip) return "dns:///" + (parts.empty() ? endpoints : parts.front());
  std::string target = "ipv4:";
  for (size_t i = 0; i < parts.size(); ++i) target += (i ? "," : "") + parts[i];
  return target;
}

}  // namespace

EtcdStore::EtcdStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdStore::~EtcdStore() = default;

Result<std::unique_ptr<EtcdStore>> EtcdStore::Open(Options options) {
  if (options.endpoints.empty()) {
    return Status(Code::kInvalidArgument, "etcd:// needs host:port[,host:port]");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT_MAX);
  args.SetMaxSendMessageSize(INT_MAX);
  args.SetLoadBalancingPolicyName("pick_first");
  impl->channel = grpc::CreateCustomChannel(GrpcTarget(impl->options.endpoints),
                                            grpc::InsecureChannelCredentials(), args);
  impl->kv = pb::KV::NewStub(impl->channel);
  impl->watch = pb::Watch::NewStub(impl->channel);
  impl->lease = pb::Lease::NewStub(impl->channel);
  std::unique_ptr<EtcdStore> store(new EtcdStore(std::move(impl)));
  Result<Revision> rev = store->CurrentRevision();
  if (!rev.ok()) return rev.status().Annotate("connecting to etcd");
  return store;
}

CapClass EtcdStore::Cap() const {
  return {"CP", "Raft-replicated: consistent and partition tolerant; needs a quorum to serve"};
}

Result<Revision> EtcdStore::CurrentRevision() {
  // A linearizable count-only read of one key: its header carries the revision.
  KISO_ASSIGN_OR_RETURN(RangeResult r,
                        Range(KeyRange::Single(std::string(1, '\0')), {.count_only = true}));
  return r.revision;
}

Result<RangeResult> EtcdStore::Range(const KeyRange& range, const RangeOptions& options) {
  KISO_RETURN_IF_ERROR(ValidateRange(range));
  pb::RangeRequest req;
  SetRange(range, req.mutable_key(), req.mutable_range_end());
  req.set_limit(options.limit);
  req.set_revision(options.revision);
  req.set_count_only(options.count_only);
  pb::RangeResponse resp;
  KISO_RETURN_IF_ERROR(impl_->Call(impl_->kv.get(), &pb::KV::Stub::Range, req, &resp, "range"));
  RangeResult out;
  out.kvs.reserve(resp.kvs_size());
  for (const auto& kv : resp.kvs()) out.kvs.push_back(FromProto(kv));
  out.count = resp.count();
  out.more = resp.more();
  out.revision = resp.header().revision();
  return out;
}

Result<TxnResponse> EtcdStore::Txn(const TxnRequest& txn) {
  KISO_RETURN_IF_ERROR(ValidateTxn(txn));
  pb::TxnRequest req;
  for (const auto& c : txn.compares) *req.add_compare() = ToProto(c);
  for (const auto& op : txn.success) *req.add_success() = ToProto(op);
  for (const auto& op : txn.failure) *req.add_failure() = ToProto(op);
  pb::TxnResponse resp;
  KISO_RETURN_IF_ERROR(impl_->Call(impl_->kv.get(), &pb::KV::Stub::Txn, req, &resp, "txn"));
  TxnResponse out;
  out.succeeded = resp.succeeded();
  out.revision = resp.header().revision();
  for (const auto& r : resp.responses()) {
    TxnOpResult result;
    if (r.has_response_range()) {
      for (const auto& kv : r.response_range().kvs()) result.kvs.push_back(FromProto(kv));
      result.count = r.response_range().count();
      result.more = r.response_range().more();
    } else if (r.has_response_put()) {
      if (r.response_put().has_prev_kv())
        result.kvs.push_back(FromProto(r.response_put().prev_kv()));
    } else if (r.has_response_delete_range()) {
      result.deleted = r.response_delete_range().deleted();
      for (const auto& kv : r.response_delete_range().prev_kvs()) {
        result.kvs.push_back(FromProto(kv));
      }
    }
    out.results.push_back(std::move(result));
  }
  return out;
}

namespace {

// One etcd watch stream, read by its own thread into a WatchChannel.
class EtcdWatchStream {
 public:
  EtcdWatchStream(std::shared_ptr<WatchChannel> channel, Revision after)
      : channel_(std::move(channel)), after_(after) {}
  ~EtcdWatchStream() {
    ctx_.TryCancel();
    if (reader_.joinable()) reader_.join();
  }

  // Opens the stream and waits for etcd to confirm the watch.
  Status Start(pb::Watch::Stub* stub, const pb::WatchRequest& req,
               const EtcdStore::Options& options,
               const std::function<Status(const grpc::Status&, std::string_view)>& error) {
    stream_ = stub->Watch(&ctx_);
    if (!stream_->Write(req)) return Finish(error);
    pb::WatchResponse first;
    if (!stream_->Read(&first)) return Finish(error);
    if (!first.created()) {
      return MakeStatus(Code::kInternal, "etcd {}: watch was not created", options.endpoints);
    }
    if (!Deliver(first)) return Status::Ok();  // Ended at once (e.g. compacted); Next tells.
    reader_ = std::thread([this, error] { ReadLoop(error); });
    return Status::Ok();
  }

 private:
  Status Finish(const std::function<Status(const grpc::Status&, std::string_view)>& error) {
    stream_->WritesDone();
    grpc::Status s = stream_->Finish();
    return s.ok() ? Status(Code::kUnavailable, "etcd watch stream closed") : error(s, "watch");
  }

  // Returns false once the watch has ended.
  bool Deliver(const pb::WatchResponse& resp) {
    if (resp.canceled()) {
      if (resp.compact_revision() > 0) {
        channel_->Close(MakeStatus(Code::kCompacted,
                                   "watch from revision {}: history has been compacted up to {}",
                                   after_ + 1, resp.compact_revision()));
      } else {
        channel_->Close(
            MakeStatus(Code::kUnavailable, "etcd cancelled the watch: {}", resp.cancel_reason()));
      }
      return false;
    }
    std::vector<WatchEvent> events;
    for (const auto& e : resp.events()) {
      WatchEvent out;
      out.type =
          e.type() == mvccpb::Event::DELETE ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut;
      out.kv = FromProto(e.kv());
      // The stream starts at `after` itself (see WatchRange): skip that revision.
      if (out.kv.mod_revision <= after_) continue;
      if (out.type == WatchEvent::Type::kDelete) {
        out.kv = KeyValue{.key = out.kv.key, .mod_revision = out.kv.mod_revision};
      }
      if (e.has_prev_kv()) out.prev_kv = FromProto(e.prev_kv());
      events.push_back(std::move(out));
    }
    return events.empty() ? !channel_->ended() : channel_->Push(std::move(events));
  }

  void ReadLoop(const std::function<Status(const grpc::Status&, std::string_view)>& error) {
    pb::WatchResponse resp;
    while (stream_->Read(&resp)) {
      if (!Deliver(resp)) {
        ctx_.TryCancel();
        break;
      }
    }
    grpc::Status s = stream_->Finish();
    channel_->Close(s.ok() || s.error_code() == grpc::StatusCode::CANCELLED
                        ? Status(Code::kUnavailable, "etcd watch stream ended")
                        : error(s, "watch"));
  }

  std::shared_ptr<WatchChannel> channel_;
  Revision after_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream_;
  std::thread reader_;
};

}  // namespace

Result<std::unique_ptr<Watch>> EtcdStore::WatchRange(const KeyRange& range, Revision after,
                                                     const WatchOptions& options) {
  KISO_RETURN_IF_ERROR(ValidateRange(range));
  if (after < 0) return Status(Code::kInvalidArgument, "watch revision must not be negative");
  pb::WatchRequest req;
  auto* create = req.mutable_create_request();
  SetRange(range, create->mutable_key(), create->mutable_range_end());
  // etcd starts at start_revision inclusive and refuses it when below the
  // compaction point. Starting at `after` (not after + 1) makes etcd refuse
  // exactly when events after `after` may be gone — the Store contract.
  create->set_start_revision(std::max<Revision>(after, 1));
  create->set_prev_kv(options.prev_kv);
  auto channel = std::make_shared<WatchChannel>(options.buffer_events);
  auto stream = std::make_shared<EtcdWatchStream>(channel, after);
  const Impl* impl = impl_.get();
  KISO_RETURN_IF_ERROR(stream->Start(
      impl_->watch.get(), req, impl_->options,
      [impl](const grpc::Status& s, std::string_view what) { return impl->Error(s, what); }));
  return std::unique_ptr<Watch>(
      std::make_unique<ChannelWatch>(channel, [stream]() mutable { stream.reset(); }));
}

Result<LeaseId> EtcdStore::GrantLease(std::chrono::seconds ttl) {
  if (ttl.count() <= 0) return Status(Code::kInvalidArgument, "lease TTL must be positive");
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl.count());
  pb::LeaseGrantResponse resp;
  KISO_RETURN_IF_ERROR(
      impl_->Call(impl_->lease.get(), &pb::Lease::Stub::LeaseGrant, req, &resp, "grant lease"));
  if (!resp.error().empty()) {
    return MakeStatus(Code::kInternal, "etcd {}: grant lease: {}", impl_->options.endpoints,
                      resp.error());
  }
  return resp.id();
}

Status EtcdStore::KeepAliveLease(LeaseId lease) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  auto stream = impl_->lease->LeaseKeepAlive(&ctx);
  pb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  pb::LeaseKeepAliveResponse resp;
  bool ok = stream->Write(req) && stream->Read(&resp);
  stream->WritesDone();
  grpc::Status s = stream->Finish();
  if (!s.ok()) return impl_->Error(s, "keep lease alive");
  if (!ok) {
    return MakeStatus(Code::kUnavailable, "etcd {}: keep lease alive: stream closed",
                      impl_->options.endpoints);
  }
  if (resp.ttl() <= 0) return MakeStatus(Code::kNotFound, "lease {:x} not found or expired", lease);
  return Status::Ok();
}

Status EtcdStore::RevokeLease(LeaseId lease) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease);
  pb::LeaseRevokeResponse resp;
  return impl_->Call(impl_->lease.get(), &pb::Lease::Stub::LeaseRevoke, req, &resp,
                     fmt::format("revoke lease {:x}", lease));
}

Status EtcdStore::Compact(Revision revision) {
  pb::CompactionRequest req;
  req.set_revision(revision);
  pb::CompactionResponse resp;
  return impl_->Call(impl_->kv.get(), &pb::KV::Stub::Compact, req, &resp, "compact");
}

extern "C" void KisoOpenEtcdStore(const EtcdOptions* options, Result<std::unique_ptr<Store>>* out) {
  auto store = EtcdStore::Open(*options);
  if (store.ok()) {
    *out = std::unique_ptr<Store>(std::move(*store));
  } else {
    *out = store.status();
  }
}

}  // namespace kiso::store
