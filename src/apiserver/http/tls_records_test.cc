#include "apiserver/http/tls_records.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <string>
#include <thread>

#include "apiserver/authn/credentials.h"
#include "support/temp_dir.h"

namespace kiso::apiserver {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Stream = ssl::stream<tcp::socket>;

// kiso's own server certificate and key, made in `dir`.
ssl::context ServerContext(const testing::TempDir& dir) {
  ssl::context tls(ssl::context::tls_server);
  auto creds = LoadOrCreateCredentials(dir.path(), "127.0.0.1", 6443, {});
  EXPECT_TRUE(creds.ok());
  if (creds.ok()) {
    tls.use_certificate_chain(asio::buffer(creds->server_cert_pem));
    tls.use_private_key(asio::buffer(creds->server_key_pem), ssl::context::pem);
  }
  return tls;
}

// A server and a client TLS stream over loopback, as the API server's.
class TlsPair {
 public:
  TlsPair() {
    tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    client.next_layer().connect(acceptor.local_endpoint());
    acceptor.accept(server.next_layer());
  }

  void Handshake() {
    boost::system::error_code client_ec, server_ec;
    std::thread peer([&] { client.handshake(ssl::stream_base::client, client_ec); });
    server.handshake(ssl::stream_base::server, server_ec);
    peer.join();
    ASSERT_FALSE(server_ec) << server_ec.message();
    ASSERT_FALSE(client_ec) << client_ec.message();
  }

 private:
  testing::TempDir dir_{"tls-records"};
  asio::io_context io_;
  ssl::context server_tls_ = ServerContext(dir_);  // Before the streams made with it.
  ssl::context client_tls_{ssl::context::tls_client};

 public:
  Stream server{io_, server_tls_};
  Stream client{io_, client_tls_};
};

std::string Pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

TEST(TlsRecordsTest, NothingBeforeTheHandshake) {
  TlsPair pair;
  std::string sealed = "kept";
  EXPECT_EQ(SealRecords(pair.server.native_handle(), "early", sealed), Sealed::kNotNow);
  EXPECT_EQ(sealed, "kept");
}

// A megabyte sealed into one buffer and sent on the bare socket reads back
// whole through the peer's TLS stream; writes through Asio's stream go on
// after it in order, and reads the other way are untouched.
TEST(TlsRecordsTest, SealedRecordsReadBackAndTheStreamGoesOn) {
  TlsPair pair;
  pair.Handshake();
  const std::string plain = Pattern((size_t{1} << 20) + 3);
  std::string sealed = "";
  ASSERT_EQ(SealRecords(pair.server.native_handle(), plain, sealed), Sealed::kDone);
  // Records of 16 KB at most, each with a few dozen bytes of framing and tag.
  const size_t records = (plain.size() + 16383) / 16384;
  EXPECT_GT(sealed.size(), plain.size() + records * 16);
  EXPECT_LT(sealed.size(), plain.size() + records * 64);

  std::thread writer([&] {
    asio::write(pair.server.next_layer(), asio::buffer(sealed));
    asio::write(pair.server, asio::buffer(std::string_view("after")));
  });
  std::string got(plain.size() + 5, '\0');
  asio::read(pair.client, asio::buffer(got));
  writer.join();
  EXPECT_TRUE(got == plain + "after");

  asio::write(pair.client, asio::buffer(std::string_view("ping")));
  std::string ping(4, '\0');
  asio::read(pair.server, asio::buffer(ping));
  EXPECT_EQ(ping, "ping");

  // Again, after Asio's own write: the session's sequence numbers agree.
  sealed.clear();
  ASSERT_EQ(SealRecords(pair.server.native_handle(), "second", sealed), Sealed::kDone);
  asio::write(pair.server.next_layer(), asio::buffer(sealed));
  std::string second(6, '\0');
  asio::read(pair.client, asio::buffer(second));
  EXPECT_EQ(second, "second");
}

}  // namespace
}  // namespace kiso::apiserver
