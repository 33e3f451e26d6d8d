// See auth.h.
#include "server/auth.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace actserve {
namespace server {
namespace {

constexpr absl::string_view kBearer = "bearer ";

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read auth token file '", path, "'"));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("error reading auth token file '", path, "'"));
  }
  return contents.str();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseTokens(absl::string_view contents) {
  std::vector<std::string> tokens;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    const absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty() || token[0] == '#') continue;
    for (char c : token) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte <= 0x20 || byte == 0x7f) {
        return absl::InvalidArgumentError(absl::StrCat(
            "auth tokens: line ", line_number,
            " contains whitespace or a control character inside the token"));
      }
    }
    tokens.emplace_back(token);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        "auth tokens: no token (one per line; '#' starts a comment)");
  }
  return tokens;
}

bool ConstantTimeEquals(absl::string_view presented, absl::string_view secret) {
  // Every byte of `presented` is compared (against the secret repeated), and the
  // differences are OR-ed without branching, so neither a matching prefix nor the
  // secret's length changes how long this takes.
  unsigned char difference = presented.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); ++i) {
    difference |= static_cast<unsigned char>(presented[i] ^ secret[i % secret.size()]);
  }
  return difference == 0;
}

absl::StatusOr<std::unique_ptr<TokenAuthenticator>> TokenAuthenticator::FromFile(
    std::string path) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) return contents.status();
  absl::StatusOr<std::vector<std::string>> tokens = ParseTokens(*contents);
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "': ", tokens.status().message()));
  }
  return std::unique_ptr<TokenAuthenticator>(
      new TokenAuthenticator(std::move(path), std::move(*tokens)));
}

TokenAuthenticator::TokenAuthenticator(std::string path, std::vector<std::string> tokens)
    : path_(std::move(path)), tokens_(std::move(tokens)) {}

absl::Status TokenAuthenticator::Authorize(const absl::string_view* authorization) const {
  if (authorization == nullptr) {
    return absl::UnauthenticatedError(
        "missing credentials: send 'authorization: Bearer <token>' (gRPC metadata or HTTP "
        "header)");
  }
  if (authorization->size() < kBearer.size() ||
      !absl::EqualsIgnoreCase(authorization->substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not a Bearer credential ('Bearer <token>')");
  }
  const absl::string_view presented =
      absl::StripLeadingAsciiWhitespace(authorization->substr(kBearer.size()));
  bool match = false;
  {
    absl::MutexLock lock(&mu_);
    // No early exit: the time taken does not tell which token, if any, matched.
    for (const std::string& token : tokens_) {
      match |= ConstantTimeEquals(presented, token);
    }
  }
  if (!match) return absl::UnauthenticatedError("invalid bearer token");
  return absl::OkStatus();
}

absl::StatusOr<size_t> TokenAuthenticator::Reload() {
  absl::StatusOr<std::string> contents = ReadFile(path_);
  if (!contents.ok()) return contents.status();
  absl::StatusOr<std::vector<std::string>> tokens = ParseTokens(*contents);
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path_, "': ", tokens.status().message()));
  }
  const size_t count = tokens->size();
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(*tokens);
  return count;
}

}  // namespace server
}  // namespace actserve
