#include "network/ingress/routes.h"

#include <gtest/gtest.h>

namespace kiso::network::ingress {
namespace {

std::shared_ptr<const Backend> B(std::string name) {
  auto b = std::make_shared<Backend>();
  b->service = std::move(name);
  return b;
}

std::string Of(const RouteTable& t, std::string_view host, std::string_view path) {
  const Backend* b = t.Match(host, path);
  return b ? b->service : "-";
}

TEST(IngressPaths, PrefixMatchesWholeElementsAndExactOnlyItself) {
  // The Ingress API's examples (networking.k8s.io/v1, "Examples" of path types).
  EXPECT_TRUE(PathMatches("/", PathType::kPrefix, "/anything"));
  EXPECT_TRUE(PathMatches("/foo", PathType::kPrefix, "/foo"));
  EXPECT_TRUE(PathMatches("/foo", PathType::kPrefix, "/foo/"));
  EXPECT_TRUE(PathMatches("/foo/", PathType::kPrefix, "/foo"));
  EXPECT_TRUE(PathMatches("/aaa/bb", PathType::kPrefix, "/aaa/bb/ccc"));
  EXPECT_FALSE(PathMatches("/aaa/bb", PathType::kPrefix, "/aaa/bbb"));
  EXPECT_FALSE(PathMatches("/foo", PathType::kPrefix, "/foobar"));
  EXPECT_TRUE(PathMatches("/foo", PathType::kExact, "/foo"));
  EXPECT_FALSE(PathMatches("/foo", PathType::kExact, "/foo/"));
  EXPECT_FALSE(PathMatches("/foo/", PathType::kExact, "/foo"));
}

TEST(IngressHosts, AWildcardCoversOneLabel) {
  EXPECT_TRUE(HostMatches("*.example.com", "a.example.com"));
  EXPECT_FALSE(HostMatches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(HostMatches("*.example.com", "example.com"));
  EXPECT_TRUE(HostMatches("", "whatever"));
  EXPECT_FALSE(HostMatches("a.example.com", "b.example.com"));
}

TEST(IngressRoutes, ExactHostThenWildcardThenAnyHostThenDefault) {
  RouteTable t;
  t.Add({"", "/", PathType::kPrefix, B("any")});
  t.Add({"*.example.com", "/", PathType::kPrefix, B("wild")});
  t.Add({"Shop.Example.com", "/cart", PathType::kPrefix, B("cart")});
  t.Add({"other.org", "/only", PathType::kExact, B("only")});
  t.SetDefault(B("fallback"));
  t.SetDefault(B("second"));  // The first default stays.
  t.Seal();
  EXPECT_EQ(Of(t, "shop.example.com", "/cart/items?x=1"), "cart");
  EXPECT_EQ(Of(t, "SHOP.example.com:8443", "/cart"), "cart");  // Case and port ignored.
  EXPECT_EQ(Of(t, "shop.example.com", "/elsewhere"), "wild");  // The host's rules miss.
  EXPECT_EQ(Of(t, "a.b.example.com", "/"), "any");
  EXPECT_EQ(Of(t, "other.org", "/only"), "only");
  EXPECT_EQ(Of(t, "other.org", "/only/"), "any");
  EXPECT_EQ(Of(t, "", "/"), "any");

  RouteTable no_catch_all;
  no_catch_all.Add({"a.test", "/", PathType::kPrefix, B("a")});
  no_catch_all.Seal();
  EXPECT_EQ(Of(no_catch_all, "b.test", "/"), "-");
  RouteTable with_default;
  with_default.Add({"a.test", "/api", PathType::kPrefix, B("a")});
  with_default.SetDefault(B("d"));
  with_default.Seal();
  EXPECT_EQ(Of(with_default, "a.test", "/web"), "d");
}

TEST(IngressRoutes, LongestPathWinsAndExactBeatsPrefixOfTheSameLength) {
  RouteTable t;
  t.Add({"h", "/", PathType::kPrefix, B("root")});
  t.Add({"h", "/api", PathType::kPrefix, B("api")});
  t.Add({"h", "/api/v2", PathType::kPrefix, B("v2")});
  t.Add({"h", "/api", PathType::kExact, B("exact")});
  t.Add({"h", "/api/v2", PathType::kPrefix, B("younger")});  // A later Ingress: loses.
  t.Seal();
  EXPECT_EQ(Of(t, "h", "/api"), "exact");
  EXPECT_EQ(Of(t, "h", "/api/x"), "api");
  EXPECT_EQ(Of(t, "h", "/api/v2/y"), "v2");
  EXPECT_EQ(Of(t, "h", "/apix"), "root");
}

TEST(IngressRoutes, CertificatesBySniExactBeforeWildcard) {
  RouteTable t;
  t.AddCertificate({{"*.Example.com"}, "ns/wild", "w", "k"});
  t.AddCertificate({{"shop.example.com", "x.test"}, "ns/shop", "s", "k"});
  t.Seal();
  ASSERT_NE(t.CertificateFor("shop.example.com"), nullptr);
  EXPECT_EQ(t.CertificateFor("shop.example.com")->secret, "ns/shop");
  EXPECT_EQ(t.CertificateFor("a.example.com")->secret, "ns/wild");
  EXPECT_EQ(t.CertificateFor("X.TEST")->secret, "ns/shop");
  EXPECT_EQ(t.CertificateFor("a.b.example.com"), nullptr);
}

}  // namespace
}  // namespace kiso::network::ingress
