// Port-forward over SPDY/3.1, as kubectl speaks it (portforward.k8s.io): for
// each local connection the client opens two streams with the headers
// streamtype (error | data), port and requestid; the server accepts both
// (SYN_REPLY), dials the port, copies the data stream both ways, writes a
// failure to the error stream, and ends both with FIN when the connection
// ends. Carried either in a WebSocket's binary messages
// (SPDY/3.1+portforward.k8s.io, kubectl's default since 1.31) or on the
// connection itself after `101 Switching Protocols, Upgrade: SPDY/3.1`.
//
// Also exec and attach over SPDY/3.1 after such an upgrade (remotecommand
// v4.channel.k8s.io, what clients without WebSockets speak): a stream per
// standard stream (streamtype error | stdin | stdout | stderr | resize), the
// process's status as a meta/v1 Status on the error stream, then FIN on all.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>

#include "apiserver/http/channel_pump.h"
#include "apiserver/http/http_connection.h"

namespace kiso::apiserver {

// Each runs until the client leaves, on the calling thread, on `io`.
void PumpSpdy(boost::asio::io_context& io, WebSocketStream& ws, ChannelSession& session);
// `buffer` holds whatever the client sent after its upgrade request.
void PumpSpdy(boost::asio::io_context& io, SslStream& stream, boost::beast::flat_buffer& buffer,
              ChannelSession& session);

// The streams a remote command's client opens, from its request (stdin,
// stdout, stderr and tty query parameters): output flows once they are all there.
struct CommandStreams {
  bool in = false;      // stdin
  bool out = false;     // stdout
  bool err = false;     // stderr; never with a terminal, whose output is all stdout.
  bool resize = false;  // With a terminal.
};
void PumpSpdyCommand(boost::asio::io_context& io, SslStream& stream,
                     boost::beast::flat_buffer& buffer, ChannelSession& session,
                     const CommandStreams& expected);

}  // namespace kiso::apiserver
