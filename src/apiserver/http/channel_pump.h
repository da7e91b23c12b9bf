// Pumps a ChannelSession over an accepted WebSocket: channel 0 (stdin) from
// the client, 1 and 2 (stdout, stderr) to it, 3 (the exit status) last, then
// a close frame; v5 adds channel 255 (the client closed stdin), 4 resizes a
// terminal. For port-forward: each port's channel both ways, then the close.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "apiserver/http/http.h"

namespace kiso::apiserver {

using WebSocketStream =
    boost::beast::websocket::stream<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>&>;

// Resizes the session's terminal to {"Width":80,"Height":24} (what a client
// sends on the resize channel or stream); anything else is ignored.
void ResizeTerminal(ChannelSession& session, std::string_view size_json);

// Runs until the session ends or the client leaves, on the calling thread:
// every completion is bound to `io`, which it runs (the socket may belong to
// another io_context).
void PumpChannels(boost::asio::io_context& io, WebSocketStream& ws, ChannelSession& session,
                  bool v5);

}  // namespace kiso::apiserver
