// Port-forward over SPDY/3.1, as kubectl speaks it (portforward.k8s.io): for
// each local connection the client opens two streams with the headers
// streamtype (error | data), port and requestid; the server accepts both
// (SYN_REPLY), dials the port, copies the data stream both ways, writes a
// failure to the error stream, and ends both with FIN when the connection
// ends. Carried either in a WebSocket's binary messages
// (SPDY/3.1+portforward.k8s.io, kubectl's default since 1.31) or on the
// connection itself after `101 Switching Protocols, Upgrade: SPDY/3.1`.
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

}  // namespace kiso::apiserver
