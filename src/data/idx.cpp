// IDX reader: whole-file read, gzip detection by magic, zlib inflate, strict
// header and size checks. Messages name the file so a user can fix the path
// or re-download the one damaged file.
#include "gossip/data/idx.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

namespace gossip::data {
namespace {

// Largest decompressed file accepted: far above any IDX file we load, and a
// guard against gzip bombs.
constexpr size_t kMaxDecompressedBytes = size_t{4} << 30;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

core::Result<std::vector<uint8_t>> read_raw(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return core::not_found(path + ": no such file");
    return core::io_error(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return core::io_error(path + ": not a regular file");
  }
  std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return core::io_error(path + ": read failed: " + std::strerror(err));
    }
    if (n == 0) break;  // file shrank while reading
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  return data;
}

core::Result<std::vector<uint8_t>> gunzip(const std::string& path, const std::vector<uint8_t>& in) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    return core::internal_error(path + ": zlib inflateInit2 failed");
  }
  // The gzip trailer's ISIZE (size mod 2^32) is a good first guess.
  size_t hint = in.size() >= 4
                    ? (size_t{in[in.size() - 1]} << 24 | size_t{in[in.size() - 2]} << 16 |
                       size_t{in[in.size() - 3]} << 8 | size_t{in[in.size() - 4]})
                    : 0;
  hint = std::clamp<size_t>(hint, 4096, size_t{1} << 30);
  std::vector<uint8_t> out(hint);
  size_t produced = 0;
  size_t consumed = 0;
  auto fail = [&](core::Status s) {
    inflateEnd(&zs);
    return s;
  };
  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= kMaxDecompressedBytes) {
        return fail(core::resource_limit(path + ": decompresses to more than " +
                                         std::to_string(kMaxDecompressedBytes >> 20) + " MiB"));
      }
      out.resize(std::min(out.size() * 2, kMaxDecompressedBytes));
    }
    const size_t in_chunk = std::min<size_t>(in.size() - consumed, UINT_MAX);
    const size_t out_chunk = std::min<size_t>(out.size() - produced, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(in.data() + consumed);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(out_chunk);
    const int ret = inflate(&zs, Z_NO_FLUSH);
    consumed += in_chunk - zs.avail_in;
    produced += out_chunk - zs.avail_out;
    if (ret == Z_STREAM_END) {
      if (consumed == in.size()) break;
      // Concatenated gzip members are one file (as gzip -d treats them).
      if (in.size() - consumed >= 2 && in[consumed] == 0x1f && in[consumed + 1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      return fail(core::corrupt(path + ": " + std::to_string(in.size() - consumed) +
                                " stray bytes after the end of the gzip stream"));
    }
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR && zs.avail_out == 0) continue;  // output full: grow
    if (ret == Z_BUF_ERROR && consumed == in.size()) {
      return fail(core::corrupt(path + ": truncated gzip stream (ends after " +
                                std::to_string(in.size()) + " compressed bytes, " +
                                std::to_string(produced) + " bytes decompressed)"));
    }
    const std::string why = zs.msg != nullptr ? zs.msg : ("zlib error " + std::to_string(ret));
    return fail(core::corrupt(path + ": damaged gzip data: " + why));
  }
  inflateEnd(&zs);
  out.resize(produced);
  return out;
}

// Parses the IDX header of `data`; returns the payload offset.
core::Result<size_t> check_header(const std::string& path, const std::vector<uint8_t>& data,
                                  uint32_t want_magic, std::vector<uint32_t>& dims) {
  const bool images = want_magic == kIdxImageMagic;
  const char* what = images ? "image" : "label";
  const size_t ndims = want_magic & 0xff;
  const size_t header = 4 + 4 * ndims;
  if (data.empty()) {
    return core::corrupt(path + ": empty file (expected an IDX " + what + " header)");
  }
  if (data.size() < 4) {
    return core::corrupt(path + ": truncated: " + std::to_string(data.size()) +
                         " bytes, too short for an IDX header");
  }
  const uint32_t magic = be32(data.data());
  if (magic != want_magic) {
    std::string msg = path + ": not an IDX " + what + " file: magic " + hex32(magic) +
                      ", expected " + hex32(want_magic);
    if (magic == kIdxLabelMagic) msg += " (this is an IDX label file)";
    if (magic == kIdxImageMagic) msg += " (this is an IDX image file)";
    return core::corrupt(msg);
  }
  if (data.size() < header) {
    return core::corrupt(path + ": truncated: " + std::to_string(data.size()) + " bytes, the IDX " +
                         what + " header needs " + std::to_string(header));
  }
  dims.resize(ndims);
  for (size_t d = 0; d < ndims; ++d) {
    dims[d] = be32(data.data() + 4 + 4 * d);
    if (dims[d] == 0) {
      return core::corrupt(path + ": header dimension " + std::to_string(d) + " is 0");
    }
    if (dims[d] > static_cast<uint32_t>(INT32_MAX)) {
      return core::corrupt(path + ": header dimension " + std::to_string(d) + " is " +
                           std::to_string(dims[d]) + ", implausibly large");
    }
  }
  size_t expect = 1;
  for (uint32_t d : dims) {
    if (expect > kMaxDecompressedBytes / d) {
      return core::corrupt(path + ": header dimensions describe more than " +
                           std::to_string(kMaxDecompressedBytes >> 20) + " MiB of data");
    }
    expect *= d;
  }
  const size_t have = data.size() - header;
  const std::string shape = images ? std::to_string(dims[0]) + " images of " +
                                         std::to_string(dims[1]) + "x" + std::to_string(dims[2])
                                   : std::to_string(dims[0]) + " labels";
  if (have < expect) {
    return core::corrupt(path + ": truncated: the header announces " + shape + " (" +
                         std::to_string(expect) + " bytes) but only " + std::to_string(have) +
                         " bytes follow");
  }
  if (have > expect) {
    return core::corrupt(path + ": " + std::to_string(have - expect) +
                         " unexpected bytes after the " + shape + " the header announces");
  }
  return header;
}

}  // namespace

core::Result<std::vector<uint8_t>> read_file_maybe_gzip(const std::string& path) {
  auto raw = read_raw(path);
  if (!raw) return raw.status();
  const auto& bytes = raw.value();
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return gunzip(path, bytes);
  return std::move(raw).value();
}

core::Result<IdxImages> read_idx_images(const std::string& path) {
  auto data = read_file_maybe_gzip(path);
  if (!data) return data.status();
  std::vector<uint32_t> dims;
  auto offset = check_header(path, data.value(), kIdxImageMagic, dims);
  if (!offset) return offset.status();
  IdxImages images;
  images.count = dims[0];
  images.rows = static_cast<int>(dims[1]);
  images.cols = static_cast<int>(dims[2]);
  auto& bytes = data.value();
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(offset.value()));
  images.pixels = std::move(bytes);
  return images;
}

core::Result<std::vector<uint8_t>> read_idx_labels(const std::string& path) {
  auto data = read_file_maybe_gzip(path);
  if (!data) return data.status();
  std::vector<uint32_t> dims;
  auto offset = check_header(path, data.value(), kIdxLabelMagic, dims);
  if (!offset) return offset.status();
  auto& bytes = data.value();
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(offset.value()));
  return std::move(bytes);
}

core::Result<Dataset> load_idx_dataset(const std::string& images_path,
                                       const std::string& labels_path, int classes) {
  auto images = read_idx_images(images_path);
  if (!images) return images.status();
  auto labels = read_idx_labels(labels_path);
  if (!labels) return labels.status();
  if (static_cast<int64_t>(labels->size()) != images->count) {
    return core::corrupt(images_path + " holds " + std::to_string(images->count) + " images but " +
                         labels_path + " holds " + std::to_string(labels->size()) +
                         " labels; they must match");
  }
  if (int64_t{images->rows} * images->cols > INT32_MAX) {
    return core::corrupt(images_path + ": images of " + std::to_string(images->rows) + "x" +
                         std::to_string(images->cols) + " are too large");
  }
  const int max_label = *std::max_element(labels->begin(), labels->end());
  if (classes <= 0) classes = std::max(2, max_label + 1);
  if (max_label >= classes) {
    return core::corrupt(labels_path + ": label " + std::to_string(max_label) + " is outside the " +
                         std::to_string(classes) + " expected classes");
  }
  std::vector<int32_t> ids(labels->begin(), labels->end());
  return Dataset::classification_u8(images_path, images->count, images->rows * images->cols,
                                    std::move(images->pixels), std::move(ids), classes);
}

}  // namespace gossip::data
