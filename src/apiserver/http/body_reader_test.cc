#include <gtest/gtest.h>

#include <string>

#include "apiserver/http/http.h"

namespace kiso::apiserver {
namespace {

Response WithParts(std::string head, std::vector<std::string> parts, std::string separator,
                   std::string tail) {
  Response r;
  r.body = std::move(head);
  auto shared = std::make_shared<SharedParts>();
  for (auto& p : parts) shared->parts.push_back(std::make_shared<const std::string>(std::move(p)));
  shared->separator = std::move(separator);
  shared->tail = std::move(tail);
  r.parts = std::move(shared);
  return r;
}

// Reads the whole body `max` bytes at a time.
std::string ReadAll(Response r, size_t max) {
  BodyReader reader(r);
  std::string out;
  std::string buf(max, '\0');
  while (size_t n = reader.Read(buf.data(), buf.size())) out.append(buf, 0, n);
  EXPECT_TRUE(reader.Done());
  return out;
}

TEST(BodyReaderTest, JoinsThePartsWhateverTheReadSize) {
  auto make = [] { return WithParts(R"({"items":[)", {"{1}", "", "{333}"}, ",", "]}\n"); };
  const std::string want = "{\"items\":[{1},,{333}]}\n";
  EXPECT_EQ(make().BodySize(), want.size());
  for (size_t max : {1, 2, 3, 7, 64}) EXPECT_EQ(ReadAll(make(), max), want) << max;
  Response flat = make();
  flat.Flatten();
  EXPECT_EQ(flat.body, want);
  EXPECT_EQ(flat.parts, nullptr);
}

TEST(BodyReaderTest, NoPartsIsHeadThenTail) {
  EXPECT_EQ(ReadAll(WithParts("[", {}, ",", "]"), 4), "[]");
  Response plain;
  plain.body = "just a body";
  EXPECT_EQ(plain.BodySize(), 11U);
  EXPECT_EQ(ReadAll(plain, 3), "just a body");
  plain.body = "";
  EXPECT_EQ(ReadAll(plain, 3), "");
}

}  // namespace
}  // namespace kiso::apiserver
