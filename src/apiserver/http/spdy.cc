#include "apiserver/http/spdy.h"

#include <fmt/format.h>
#include <zlib.h>

#include <array>
#include <cstring>

namespace kiso::apiserver::spdy {

namespace {

constexpr uint16_t kVersion = 3;

void Put32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t Get32(std::string_view in, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(in[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(in[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(in[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(in[at + 3]));
}

// The eight-byte header of a control frame, then its body.
std::string Control(FrameType type, uint8_t flags, const std::string& body) {
  std::string out;
  out.push_back(static_cast<char>(0x80 | (kVersion >> 8)));
  out.push_back(static_cast<char>(kVersion & 0xff));
  out.push_back(static_cast<char>(static_cast<uint16_t>(type) >> 8));
  out.push_back(static_cast<char>(static_cast<uint16_t>(type) & 0xff));
  Put32(out, (static_cast<uint32_t>(flags) << 24) | static_cast<uint32_t>(body.size()));
  return out + body;
}

// The dictionary as the SPDY/3 specification lays it out: header names and
// common values, each after its 32-bit length, then one run of common text.
std::string BuildDictionary() {
  static constexpr std::array<std::string_view, 65> kWords = {"options",
                                                              "head",
                                                              "post",
                                                              "put",
                                                              "delete",
                                                              "trace",
                                                              "accept",
                                                              "accept-charset",
                                                              "accept-encoding",
                                                              "accept-language",
                                                              "accept-ranges",
                                                              "age",
                                                              "allow",
                                                              "authorization",
                                                              "cache-control",
                                                              "connection",
                                                              "content-base",
                                                              "content-encoding",
                                                              "content-language",
                                                              "content-length",
                                                              "content-location",
                                                              "content-md5",
                                                              "content-range",
                                                              "content-type",
                                                              "date",
                                                              "etag",
                                                              "expect",
                                                              "expires",
                                                              "from",
                                                              "host",
                                                              "if-match",
                                                              "if-modified-since",
                                                              "if-none-match",
                                                              "if-range",
                                                              "if-unmodified-since",
                                                              "last-modified",
                                                              "location",
                                                              "max-forwards",
                                                              "pragma",
                                                              "proxy-authenticate",
                                                              "proxy-authorization",
                                                              "range",
                                                              "referer",
                                                              "retry-after",
                                                              "server",
                                                              "te",
                                                              "trailer",
                                                              "transfer-encoding",
                                                              "upgrade",
                                                              "user-agent",
                                                              "vary",
                                                              "via",
                                                              "warning",
                                                              "www-authenticate",
                                                              "method",
                                                              "get",
                                                              "status",
                                                              "200 OK",
                                                              "version",
                                                              "HTTP/1.1",
                                                              "url",
                                                              "public",
                                                              "set-cookie",
                                                              "keep-alive",
                                                              "origin"};
  std::string out;
  for (std::string_view w : kWords) {
    Put32(out, static_cast<uint32_t>(w.size()));
    out.append(w);
  }
  out +=
      "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
      "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
      "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
      "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
      "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/"
      "xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,"
      "sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
  return out;
}

}  // namespace

std::string_view HeaderDictionary() {
  static const std::string dictionary = BuildDictionary();
  return dictionary;
}

std::string_view Frame::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

struct Codec::Zlib {
  z_stream in{};
  z_stream out{};
  bool in_ok = false;
  bool out_ok = false;
  ~Zlib() {
    if (in_ok) inflateEnd(&in);
    if (out_ok) deflateEnd(&out);
  }
};

Codec::Codec() : zlib_(std::make_unique<Zlib>()) {
  zlib_->in_ok = inflateInit(&zlib_->in) == Z_OK;
  zlib_->out_ok = deflateInit(&zlib_->out, Z_DEFAULT_COMPRESSION) == Z_OK;
  if (zlib_->out_ok) {
    std::string_view d = HeaderDictionary();
    zlib_->out_ok = deflateSetDictionary(&zlib_->out, reinterpret_cast<const Bytef*>(d.data()),
                                         static_cast<uInt>(d.size())) == Z_OK;
  }
  broken_ = !zlib_->in_ok || !zlib_->out_ok;
}

Codec::~Codec() = default;

Status Codec::Feed(std::string_view bytes, std::vector<Frame>& frames) {
  if (broken_) return Status(Code::kInvalidArgument, "the SPDY session is broken");
  pending_.append(bytes);
  size_t at = 0;
  Status result = Status::Ok();
  while (pending_.size() - at >= 8) {
    std::string_view head(pending_.data() + at, 8);
    uint32_t word = Get32(head, 4);
    auto flags = static_cast<uint8_t>(word >> 24);
    size_t length = word & 0xffffff;
    if (length > kMaxFrameBytes) {
      result =
          MakeStatus(Code::kResourceExhausted, "a SPDY frame of {} bytes is past the limit of {}",
                     length, kMaxFrameBytes);
      break;
    }
    if (pending_.size() - at < 8 + length) break;
    std::string_view body(pending_.data() + at + 8, length);
    Frame frame;
    frame.flags = flags;
    if ((static_cast<unsigned char>(head[0]) & 0x80) != 0) {
      uint16_t version = static_cast<uint16_t>(((static_cast<unsigned char>(head[0]) & 0x7f) << 8) |
                                               static_cast<unsigned char>(head[1]));
      if (version != kVersion) {
        result = MakeStatus(Code::kInvalidArgument, "SPDY version {} is not 3", version);
        break;
      }
      auto type = static_cast<uint16_t>((static_cast<unsigned char>(head[2]) << 8) |
                                        static_cast<unsigned char>(head[3]));
      result = Parse(type, flags, body, frame);
      if (!result.ok()) break;
    } else {
      frame.type = FrameType::kData;
      frame.stream_id = Get32(head, 0) & 0x7fffffff;
      frame.data.assign(body);
    }
    at += 8 + length;
    frames.push_back(std::move(frame));
  }
  pending_.erase(0, at);
  if (pending_.size() > kMaxFrameBytes + 8) {
    result = Status(Code::kResourceExhausted, "SPDY input past the frame limit");
  }
  if (!result.ok()) broken_ = true;
  return result;
}

Status Codec::Parse(uint16_t type, uint8_t flags, std::string_view body, Frame& frame) {
  (void)flags;
  auto need = [&](size_t n) -> Status {
    if (body.size() < n) {
      return MakeStatus(Code::kInvalidArgument, "a SPDY control frame of type {} is too short",
                        type);
    }
    return Status::Ok();
  };
  switch (static_cast<FrameType>(type)) {
    case FrameType::kSynStream: {
      KISO_RETURN_IF_ERROR(need(10));
      frame.type = FrameType::kSynStream;
      frame.stream_id = Get32(body, 0) & 0x7fffffff;
      KISO_ASSIGN_OR_RETURN(frame.headers, InflateHeaders(body.substr(10)));
      return Status::Ok();
    }
    case FrameType::kSynReply:
    case FrameType::kHeaders: {
      KISO_RETURN_IF_ERROR(need(4));
      frame.type = static_cast<FrameType>(type);
      frame.stream_id = Get32(body, 0) & 0x7fffffff;
      KISO_ASSIGN_OR_RETURN(frame.headers, InflateHeaders(body.substr(4)));
      return Status::Ok();
    }
    case FrameType::kRstStream:
    case FrameType::kGoAway:
    case FrameType::kWindowUpdate: {
      KISO_RETURN_IF_ERROR(need(8));
      frame.type = static_cast<FrameType>(type);
      frame.stream_id = Get32(body, 0) & 0x7fffffff;
      frame.value = Get32(body, 4);
      return Status::Ok();
    }
    case FrameType::kPing: {
      KISO_RETURN_IF_ERROR(need(4));
      frame.type = FrameType::kPing;
      frame.value = Get32(body, 0);
      return Status::Ok();
    }
    case FrameType::kSettings:
    case FrameType::kData:
      break;
  }
  // SETTINGS, and frame types this side has no use for, are passed on as such.
  frame.type = FrameType::kSettings;
  return Status::Ok();
}

Result<Headers> Codec::InflateHeaders(std::string_view block) {
  z_stream& z = zlib_->in;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z.avail_in = static_cast<uInt>(block.size());
  std::string text;
  std::array<char, 4096> chunk{};
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    int rc = inflate(&z, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      std::string_view d = HeaderDictionary();
      if (z.adler !=
          adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size()))) {
        return MakeStatus(Code::kInvalidArgument,
                          "the SPDY header block wants dictionary {:#x}, not SPDY/3's", z.adler);
      }
      rc = inflateSetDictionary(&z, reinterpret_cast<const Bytef*>(d.data()),
                                static_cast<uInt>(d.size()));
      if (rc != Z_OK) return Status(Code::kInvalidArgument, "the SPDY dictionary was refused");
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return MakeStatus(Code::kInvalidArgument, "a SPDY header block does not inflate: {}",
                        z.msg ? z.msg : "zlib error");
    }
    text.append(chunk.data(), chunk.size() - z.avail_out);
    if (text.size() > kMaxHeaderBytes) {
      return MakeStatus(Code::kResourceExhausted, "a SPDY header block inflates past {} bytes",
                        kMaxHeaderBytes);
    }
    if (z.avail_out != 0) break;  // Everything the block holds is out.
  }
  if (z.avail_in != 0)
    return Status(Code::kInvalidArgument, "a SPDY header block has trailing bytes");
  Headers headers;
  if (text.size() < 4) return Status(Code::kInvalidArgument, "a SPDY header block is too short");
  uint32_t pairs = Get32(text, 0);
  if (pairs > kMaxHeaderPairs) {
    return MakeStatus(Code::kResourceExhausted, "{} SPDY headers are past the limit of {}", pairs,
                      kMaxHeaderPairs);
  }
  size_t at = 4;
  auto string = [&](std::string& out) -> bool {
    if (text.size() - at < 4) return false;
    uint32_t n = Get32(text, at);
    at += 4;
    if (text.size() - at < n) return false;
    out.assign(text, at, n);
    at += n;
    return true;
  };
  for (uint32_t i = 0; i < pairs; ++i) {
    std::string name, value;
    if (!string(name) || !string(value))
      return Status(Code::kInvalidArgument, "a SPDY header block ends inside a header");
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers.emplace_back(std::move(name), std::move(value));
  }
  return headers;
}

std::string Codec::DeflateHeaders(const Headers& headers) {
  std::string text;
  Put32(text, static_cast<uint32_t>(headers.size()));
  for (const auto& [k, v] : headers) {
    Put32(text, static_cast<uint32_t>(k.size()));
    text += k;
    Put32(text, static_cast<uint32_t>(v.size()));
    text += v;
  }
  z_stream& z = zlib_->out;
  z.next_in = reinterpret_cast<Bytef*>(text.data());
  z.avail_in = static_cast<uInt>(text.size());
  std::string out;
  std::array<char, 4096> chunk{};
  do {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    deflate(&z, Z_SYNC_FLUSH);
    out.append(chunk.data(), chunk.size() - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

std::string Codec::SynStream(uint32_t stream, const Headers& headers, bool fin) {
  std::string body;
  Put32(body, stream & 0x7fffffff);
  Put32(body, 0);     // No associated stream.
  body.push_back(0);  // Priority 0.
  body.push_back(0);  // Slot.
  body += DeflateHeaders(headers);
  return Control(FrameType::kSynStream, fin ? kFlagFin : 0, body);
}

std::string Codec::SynReply(uint32_t stream, const Headers& headers, bool fin) {
  std::string body;
  Put32(body, stream & 0x7fffffff);
  body += DeflateHeaders(headers);
  return Control(FrameType::kSynReply, fin ? kFlagFin : 0, body);
}

std::string Codec::Data(uint32_t stream, std::string_view data, bool fin) {
  std::string out;
  Put32(out, stream & 0x7fffffff);
  Put32(out,
        (static_cast<uint32_t>(fin ? kFlagFin : 0) << 24) | static_cast<uint32_t>(data.size()));
  out.append(data);
  return out;
}

std::string Codec::RstStream(uint32_t stream, uint32_t status) {
  std::string body;
  Put32(body, stream & 0x7fffffff);
  Put32(body, status);
  return Control(FrameType::kRstStream, 0, body);
}

std::string Codec::Ping(uint32_t id) {
  std::string body;
  Put32(body, id);
  return Control(FrameType::kPing, 0, body);
}

std::string Codec::GoAway(uint32_t last_stream, uint32_t status) {
  std::string body;
  Put32(body, last_stream & 0x7fffffff);
  Put32(body, status);
  return Control(FrameType::kGoAway, 0, body);
}

}  // namespace kiso::apiserver::spdy
