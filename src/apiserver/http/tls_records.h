// Many TLS records in one send. Asio's TLS stream writes each record (16 KB
// of plaintext at most) to the socket by itself, through a 17 KB buffer pair
// and a completion handler per record: a LIST of 10,000 pods (26 MB) was
// 1,650 sends. SealRecords encrypts a large plaintext with the connection's
// own TLS session into one buffer that a single write sends; the session's
// sequence numbers and keys advance as if Asio had written it.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace kiso::apiserver {

enum class Sealed {
  kDone,    // `plain` is in `sealed`, as records.
  kNotNow,  // Nothing done: write `plain` through the stream instead.
  kBroken,  // The session failed part way: close the connection.
};

// Appends `plain` to `sealed` as TLS records of the session `ssl`. kNotNow,
// with nothing appended and nothing changed, when the session is not ready for
// it: a handshake under way, or output of Asio's engine not yet sent (its
// buffer pair holds bytes). The caller must send `sealed` before anything
// else is written on the connection, and no read may be under way meanwhile
// whose processing could write (the caller's protocol has the connection half
// duplex then: HTTP/1.1 between a request and its answer).
Sealed SealRecords(SSL* ssl, std::string_view plain, std::string& sealed);

}  // namespace kiso::apiserver
