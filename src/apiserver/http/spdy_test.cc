#include "apiserver/http/spdy.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace kiso::apiserver::spdy {
namespace {

TEST(Spdy, DictionaryIsTheSpecificationsOne) {
  std::string_view d = HeaderDictionary();
  EXPECT_EQ(d.size(), 1423u);
  EXPECT_EQ(d.substr(0, 11), std::string_view("\0\0\0\7options", 11));
  EXPECT_TRUE(d.ends_with(",*,enq=0."));
}

// A client's streams as kubectl opens them, through a second codec: header
// blocks share one compression context per direction across frames.
TEST(Spdy, FramesRoundTripBetweenTwoCodecs) {
  Codec client, server;
  std::string wire =
      client.SynStream(1, {{"streamtype", "error"}, {"port", "80"}, {"requestid", "0"}}, false);
  wire += client.SynStream(3, {{"streamtype", "data"}, {"port", "80"}, {"requestid", "0"}}, false);
  wire += client.Data(3, "GET / HTTP/1.0\r\n\r\n", true);
  wire += client.Ping(7);
  std::vector<Frame> frames;
  // Fed a byte at a time: frames complete only when their last byte is in.
  for (char c : wire) ASSERT_TRUE(server.Feed(std::string_view(&c, 1), frames).ok());
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].type, FrameType::kSynStream);
  EXPECT_EQ(frames[0].stream_id, 1u);
  EXPECT_EQ(frames[0].Header("streamtype"), "error");
  EXPECT_EQ(frames[1].Header("streamtype"), "data");
  EXPECT_EQ(frames[1].Header("port"), "80");
  EXPECT_EQ(frames[2].type, FrameType::kData);
  EXPECT_EQ(frames[2].stream_id, 3u);
  EXPECT_TRUE(frames[2].fin());
  EXPECT_EQ(frames[2].data, "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(frames[3].type, FrameType::kPing);
  EXPECT_EQ(frames[3].value, 7u);
  std::vector<Frame> replies;
  ASSERT_TRUE(
      client.Feed(server.SynReply(1, {}, false) + server.RstStream(3, kRefusedStream), replies)
          .ok());
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, FrameType::kSynReply);
  EXPECT_TRUE(replies[0].headers.empty());
  EXPECT_EQ(replies[1].type, FrameType::kRstStream);
  EXPECT_EQ(replies[1].value, kRefusedStream);
}

TEST(Spdy, BrokenInputEndsTheSessionWithinItsBounds) {
  std::vector<Frame> frames;
  {
    Codec c;  // A frame longer than the limit is refused from its header alone.
    std::string huge("\x80\x03\x00\x01\x00\xff\xff\xff", 8);
    EXPECT_EQ(c.Feed(huge, frames).code(), Code::kResourceExhausted);
    EXPECT_FALSE(c.Feed("", frames).ok());  // Broken for good.
  }
  {
    Codec c;  // A header block that is not zlib.
    std::string bad("\x80\x03\x00\x01\x00\x00\x00\x0e\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00notz",
                    22);
    EXPECT_EQ(c.Feed(bad, frames).code(), Code::kInvalidArgument);
  }
  {
    Codec c;  // Another version.
    EXPECT_EQ(
        c.Feed(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12), frames).code(),
        Code::kInvalidArgument);
  }
  {
    // A header block that inflates past the bound (a zip bomb of zeros).
    std::string text(kMaxHeaderBytes + 1024, '\0');
    z_stream z{};
    ASSERT_EQ(deflateInit(&z, 9), Z_OK);
    std::string_view d = HeaderDictionary();
    deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size()));
    std::string block(text.size(), '\0');
    z.next_in = reinterpret_cast<Bytef*>(text.data());
    z.avail_in = static_cast<uInt>(text.size());
    z.next_out = reinterpret_cast<Bytef*>(block.data());
    z.avail_out = static_cast<uInt>(block.size());
    deflate(&z, Z_SYNC_FLUSH);
    block.resize(block.size() - z.avail_out);
    deflateEnd(&z);
    std::string body("\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
    body += block;
    std::string frame("\x80\x03\x00\x01", 4);
    frame.push_back(0);
    frame.push_back(static_cast<char>(body.size() >> 16));
    frame.push_back(static_cast<char>(body.size() >> 8));
    frame.push_back(static_cast<char>(body.size()));
    Codec c;
    EXPECT_EQ(c.Feed(frame + body, frames).code(), Code::kResourceExhausted);
  }
  EXPECT_TRUE(frames.empty());
}

}  // namespace
}  // namespace kiso::apiserver::spdy
