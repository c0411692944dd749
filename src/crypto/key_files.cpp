// Key files on disk: the text format documented in keys.hpp, written 0600
// with O_CREAT|O_EXCL (never overwriting), read back only when group and
// others have no access. Every error names the file and says what to do;
// no message ever contains key material, and every buffer that held secret
// text is zeroed before it is released.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "gossip/crypto/keys.hpp"

namespace gossip::crypto {
namespace {

constexpr std::string_view kIdentityHeader = "gossip-train identity v1";
constexpr std::string_view kSwarmHeader = "gossip-train swarm-key v1";
constexpr size_t kMaxKeyFileBytes = 4096;

// A fixed-size text buffer that is zeroed when it goes out of scope.
struct SecretText {
  std::array<char, kMaxKeyFileBytes> buf{};
  size_t len = 0;
  ~SecretText() { sodium_memzero(buf.data(), buf.size()); }
  void append(std::string_view s) {
    // Callers only append the few fixed-size lines of a key file.
    std::memcpy(buf.data() + len, s.data(), s.size());
    len += s.size();
  }
  void append_hex(const uint8_t* bytes, size_t n) {
    sodium_bin2hex(buf.data() + len, buf.size() - len, bytes, n);
    len += 2 * n;
  }
};

std::string where(const std::filesystem::path& path) {
  return path.string() + ": ";
}

core::Status write_file(const std::filesystem::path& path, const SecretText& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) {
      return core::invalid_argument(where(path) +
                                    "already exists; refusing to overwrite a key file "
                                    "(remove it first or choose another path)");
    }
    return core::io_error(where(path) + "cannot create: " + std::strerror(err));
  }
  size_t off = 0;
  int err = 0;
  while (off < text.len) {
    ssize_t n = ::write(fd, text.buf.data() + off, text.len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (err == 0 && ::fchmod(fd, 0600) != 0) err = errno;  // whatever the umask did
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(path.c_str());
    return core::io_error(where(path) + "cannot write: " + std::strerror(err));
  }
  return core::Status::ok();
}

// Reads the whole file after checking that it is a small regular file that
// only its owner can access.
core::Status read_secret_file(const std::filesystem::path& path, SecretText& text) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      return core::not_found(where(path) + "no such file (create one with gossip-keygen)");
    }
    return core::io_error(where(path) + "cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return core::io_error(where(path) + "cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return core::invalid_argument(where(path) + "not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return core::invalid_argument(where(path) + "permissions " + mode +
                                  " are too open: a secret key file must not be accessible by "
                                  "group or others (run: chmod 600 " +
                                  path.string() + ")");
  }
  if (static_cast<uint64_t>(st.st_size) >= kMaxKeyFileBytes) {
    ::close(fd);
    return core::corrupt(where(path) + "too large for a key file (" + std::to_string(st.st_size) +
                         " bytes)");
  }
  int err = 0;
  while (text.len < text.buf.size()) {
    ssize_t n = ::read(fd, text.buf.data() + text.len, text.buf.size() - text.len);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    text.len += static_cast<size_t>(n);
  }
  ::close(fd);
  if (err != 0) return core::io_error(where(path) + "cannot read: " + std::strerror(err));
  if (text.len >= text.buf.size()) return core::corrupt(where(path) + "too large for a key file");
  return core::Status::ok();
}

// Splits into lines without copying; strips '\r' and trailing blanks, and
// drops trailing empty lines.
std::vector<std::string_view> split_lines(const SecretText& text) {
  std::vector<std::string_view> lines;
  std::string_view all(text.buf.data(), text.len);
  while (!all.empty()) {
    size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    all = nl == std::string_view::npos ? std::string_view() : all.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    lines.push_back(line);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

core::Status check_header(const std::filesystem::path& path,
                          const std::vector<std::string_view>& lines, std::string_view want,
                          const std::string& want_kind) {
  const std::string article = want_kind[0] == 'i' ? "an " : "a ";
  if (lines.empty()) {
    return core::corrupt(where(path) + "empty file, not " + article + want_kind + " file");
  }
  if (lines[0] == want) return core::Status::ok();
  if (lines[0] == kIdentityHeader) {
    return core::invalid_argument(where(path) + "is an identity key file, not " + article +
                                  want_kind + " file");
  }
  if (lines[0] == kSwarmHeader) {
    return core::invalid_argument(where(path) + "is a swarm key file, not " + article + want_kind +
                                  " file");
  }
  // Never echo the line: it could be someone's secret.
  return core::corrupt(where(path) + "not a gossip-train " + want_kind +
                       " file (first line is not '" + std::string(want) + "')");
}

// Parses line `index` (0-based) as "<field> <64 hex chars>" into out[32].
core::Status parse_field(const std::filesystem::path& path,
                         const std::vector<std::string_view>& lines, size_t index,
                         std::string_view field, uint8_t* out) {
  std::string line_no = "line " + std::to_string(index + 1) + ": ";
  if (index >= lines.size()) {
    return core::corrupt(where(path) + "truncated: missing '" + std::string(field) + "' line");
  }
  std::string_view line = lines[index];
  if (line.size() <= field.size() || line.substr(0, field.size()) != field ||
      line[field.size()] != ' ') {
    return core::corrupt(where(path) + line_no + "expected '" + std::string(field) +
                         " <64 hex characters>'");
  }
  std::string_view hex = line.substr(field.size() + 1);
  size_t len = 0;
  const char* end = nullptr;
  if (hex.size() != 64 ||
      sodium_hex2bin(out, 32, hex.data(), hex.size(), nullptr, &len, &end) != 0 || len != 32 ||
      end != hex.data() + hex.size()) {
    sodium_memzero(out, 32);
    return core::corrupt(where(path) + line_no + "damaged '" + std::string(field) +
                         "' value: expected exactly 64 hex characters");
  }
  return core::Status::ok();
}

core::Status check_no_extra(const std::filesystem::path& path,
                            const std::vector<std::string_view>& lines, size_t expected) {
  if (lines.size() > expected) {
    return core::corrupt(where(path) + "line " + std::to_string(expected + 1) +
                         ": unexpected extra content after the key");
  }
  return core::Status::ok();
}

}  // namespace

core::Status write_identity_file(const std::filesystem::path& path, const StaticKeypair& keys) {
  SecretText text;
  text.append(kIdentityHeader);
  text.append("\npublic ");
  text.append_hex(keys.public_key.data(), keys.public_key.size());
  text.append("\nsecret ");
  text.append_hex(keys.secret_key.data(), keys.secret_key.size());
  text.append("\n");
  return write_file(path, text);
}

core::Status write_swarm_key_file(const std::filesystem::path& path, const SwarmKey& key) {
  SecretText text;
  text.append(kSwarmHeader);
  text.append("\nkey ");
  text.append_hex(key.key.data(), key.key.size());
  text.append("\n");
  return write_file(path, text);
}

core::Result<StaticKeypair> load_identity_file(const std::filesystem::path& path) {
  ensure_sodium();
  SecretText text;
  GOSSIP_RETURN_IF_ERROR(read_secret_file(path, text));
  auto lines = split_lines(text);
  GOSSIP_RETURN_IF_ERROR(check_header(path, lines, kIdentityHeader, "identity key"));
  PublicKey stored{};
  GOSSIP_RETURN_IF_ERROR(parse_field(path, lines, 1, "public", stored.data()));
  SecretBytes secret;
  GOSSIP_RETURN_IF_ERROR(parse_field(path, lines, 2, "secret", secret.data()));
  GOSSIP_RETURN_IF_ERROR(check_no_extra(path, lines, 3));
  StaticKeypair keys = StaticKeypair::from_secret(secret.data());
  if (sodium_memcmp(keys.public_key.data(), stored.data(), stored.size()) != 0) {
    return core::corrupt(where(path) +
                         "the public key does not match the secret key (file damaged or edited; "
                         "generate a new identity with gossip-keygen)");
  }
  return keys;
}

core::Result<SwarmKey> load_swarm_key_file(const std::filesystem::path& path) {
  ensure_sodium();
  SecretText text;
  GOSSIP_RETURN_IF_ERROR(read_secret_file(path, text));
  auto lines = split_lines(text);
  GOSSIP_RETURN_IF_ERROR(check_header(path, lines, kSwarmHeader, "swarm key"));
  SwarmKey key;
  GOSSIP_RETURN_IF_ERROR(parse_field(path, lines, 1, "key", key.key.data()));
  GOSSIP_RETURN_IF_ERROR(check_no_extra(path, lines, 2));
  return key;
}

}  // namespace gossip::crypto
