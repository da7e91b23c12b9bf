// SPDY/3.1 framing, what kubectl's port-forward speaks (inside a WebSocket
// offering SPDY/3.1+portforward.k8s.io, or after an `Upgrade: SPDY/3.1`):
// control frames (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY,
// HEADERS, WINDOW_UPDATE) and data frames, with header blocks compressed by
// zlib (Debian's) primed with the protocol's dictionary, one compression
// context per direction. No Asio here: bytes in, frames out, and back.
//
// Bounded: a frame is at most kMaxFrameBytes, a header block inflates to at
// most kMaxHeaderBytes with at most kMaxHeaderPairs pairs; past any bound the
// session is broken (an error), never a larger allocation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiso::apiserver::spdy {

enum class FrameType : uint16_t {
  kData = 0,
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint32_t kProtocolError = 1;  // RST_STREAM status.
inline constexpr uint32_t kRefusedStream = 3;
inline constexpr size_t kMaxFrameBytes = 1 << 20;
inline constexpr size_t kMaxHeaderBytes = size_t{256} * 1024;
inline constexpr size_t kMaxHeaderPairs = 1024;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Frame {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  // The stream (data, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS,
  // WINDOW_UPDATE), or GOAWAY's last good stream.
  uint32_t stream_id = 0;
  // PING's id, RST_STREAM's and GOAWAY's status, WINDOW_UPDATE's delta.
  uint32_t value = 0;
  Headers headers;   // SYN_STREAM, SYN_REPLY, HEADERS (names in lower case).
  std::string data;  // Data frames.

  bool fin() const { return (flags & kFlagFin) != 0; }
  // A header's value, "" when absent.
  std::string_view Header(std::string_view name) const;
};

// One side of a SPDY session.
class Codec {
 public:
  Codec();
  ~Codec();
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  // Takes bytes from the peer; appends the frames they complete. An error
  // (a broken frame, a header block that does not inflate, a bound passed)
  // ends the session: the codec is unusable afterwards.
  Status Feed(std::string_view bytes, std::vector<Frame>& frames);

  std::string SynStream(uint32_t stream, const Headers& headers, bool fin);
  std::string SynReply(uint32_t stream, const Headers& headers, bool fin);
  std::string Data(uint32_t stream, std::string_view data, bool fin);
  std::string RstStream(uint32_t stream, uint32_t status);
  std::string Ping(uint32_t id);
  std::string GoAway(uint32_t last_stream, uint32_t status);

 private:
  struct Zlib;
  Status Parse(uint16_t type, uint8_t flags, std::string_view body, Frame& frame);
  Result<Headers> InflateHeaders(std::string_view block);
  std::string DeflateHeaders(const Headers& headers);

  std::unique_ptr<Zlib> zlib_;
  std::string pending_;  // Bytes of a frame not complete yet.
  bool broken_ = false;
};

// The zlib dictionary of SPDY/3 header blocks (1,423 bytes).
std::string_view HeaderDictionary();

}  // namespace kiso::apiserver::spdy
