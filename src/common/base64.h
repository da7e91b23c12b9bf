// Base64 (RFC 4648), standard and URL-safe, by OpenSSL's EVP block coder.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiso {

// Standard alphabet, padded.
std::string Base64Encode(std::string_view in);
// Standard alphabet, padded; nullopt on anything else (whitespace included).
std::optional<std::string> Base64Decode(std::string_view in);
// URL-safe alphabet without padding (JWTs, continue tokens).
std::string Base64UrlEncode(std::string_view in);
// URL-safe alphabet, padding optional; nullopt on anything else.
std::optional<std::string> Base64UrlDecode(std::string_view in);

}  // namespace kiso
