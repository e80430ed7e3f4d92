#include "sae/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/fs_util.h"

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian port must swap bytes");

namespace s3::sae {
namespace {

// The reference implementation refuses headers above 100 MB; so do we (a corrupted length field
// must not make us allocate gigabytes).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeEntry {
  Dtype dtype;
  std::string_view name;
  size_t size;
};

constexpr DtypeEntry kDtypes[] = {
    {Dtype::kBool, "BOOL", 1}, {Dtype::kU8, "U8", 1},          {Dtype::kI8, "I8", 1},
    {Dtype::kI16, "I16", 2},   {Dtype::kU16, "U16", 2},        {Dtype::kF16, "F16", 2},
    {Dtype::kBF16, "BF16", 2}, {Dtype::kI32, "I32", 4},        {Dtype::kU32, "U32", 4},
    {Dtype::kF32, "F32", 4},   {Dtype::kF64, "F64", 8},        {Dtype::kI64, "I64", 8},
    {Dtype::kU64, "U64", 8},   {Dtype::kF8E4M3, "F8_E4M3", 1}, {Dtype::kF8E5M2, "F8_E5M2", 1},
};

const DtypeEntry& entry_of(Dtype dtype) {
  for (const auto& e : kDtypes) {
    if (e.dtype == dtype) return e;
  }
  throw Error("internal: unknown safetensors dtype " + std::to_string(static_cast<int>(dtype)));
}

// numel * elem_size, or false on overflow / negative dimension.
bool byte_count(const std::vector<int64_t>& shape, size_t elem_size, uint64_t* out) {
  uint64_t n = elem_size;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace

std::string_view dtype_name(Dtype dtype) {
  return entry_of(dtype).name;
}
size_t dtype_size(Dtype dtype) {
  return entry_of(dtype).size;
}

bool parse_dtype(std::string_view name, Dtype* out) {
  for (const auto& e : kDtypes) {
    if (e.name == name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Reading

struct SafetensorsFile::Impl {
  std::string path;
  // Either a mapping (map != nullptr) or owned bytes.
  void* map = nullptr;
  size_t map_size = 0;
  std::vector<std::byte> owned;
  const std::byte* base = nullptr;
  size_t size = 0;
  uint64_t data_start = 0;  // 8 + header length
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;

  ~Impl() {
    if (map != nullptr) munmap(map, map_size);
  }

  [[noreturn]] void corrupt(const std::string& what) const { throw DataCorruption(path, what); }

  void parse();
};

void SafetensorsFile::Impl::parse() {
  if (size < 8) {
    corrupt("not a safetensors file: " + std::to_string(size) +
            " bytes is too short for the 8-byte header length");
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  if (header_len > size - 8) {
    corrupt("header length " + std::to_string(header_len) + " runs past the end of the file (" +
            std::to_string(size) + " bytes): truncated or not a safetensors file");
  }
  if (header_len > kMaxHeaderBytes) {
    corrupt("header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  }
  data_start = 8 + header_len;
  const uint64_t buffer_size = size - data_start;
  const char* text = reinterpret_cast<const char*>(base + 8);

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, text + header_len);
  } catch (const nlohmann::json::parse_error& e) {
    corrupt(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) corrupt("header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& value = it.value();
    if (name == "__metadata__") {
      if (!value.is_object()) corrupt("__metadata__ is not a JSON object");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) corrupt("__metadata__ value '" + m.key() + "' is not a string");
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!value.is_object()) corrupt(where + " is not a JSON object");
    auto dt = value.find("dtype");
    auto sh = value.find("shape");
    auto off = value.find("data_offsets");
    if (dt == value.end() || !dt->is_string()) corrupt(where + " has no string 'dtype'");
    if (sh == value.end() || !sh->is_array()) corrupt(where + " has no 'shape' array");
    if (off == value.end() || !off->is_array() || off->size() != 2) {
      corrupt(where + " has no 'data_offsets' pair");
    }
    TensorInfo info;
    info.name = name;
    if (!parse_dtype(dt->get<std::string>(), &info.dtype)) {
      corrupt(where + " has unknown dtype '" + dt->get<std::string>() + "'");
    }
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) corrupt(where + " has a shape entry that is not a size");
      info.shape.push_back(d.get<int64_t>());
    }
    for (const auto& o : *off) {
      if (!o.is_number_unsigned()) corrupt(where + " has a data offset that is not a size");
    }
    info.begin = (*off)[0].get<uint64_t>();
    info.end = (*off)[1].get<uint64_t>();
    uint64_t expected = 0;
    if (!byte_count(info.shape, dtype_size(info.dtype), &expected)) {
      corrupt(where + " has an impossible shape " + shape_string(info.shape));
    }
    const std::string range =
        "[" + std::to_string(info.begin) + ", " + std::to_string(info.end) + ")";
    if (info.end < info.begin) corrupt(where + " has reversed data_offsets " + range);
    if (info.end > buffer_size) {
      corrupt(where + " data_offsets " + range + " run past the data buffer (" +
              std::to_string(buffer_size) + " bytes): truncated file or corrupted header");
    }
    if (info.end - info.begin != expected) {
      corrupt(where + " holds " + std::to_string(info.end - info.begin) + " bytes but " +
              std::string(dtype_name(info.dtype)) + " " + shape_string(info.shape) + " needs " +
              std::to_string(expected));
    }
    tensors.push_back(std::move(info));
  }

  // The tensors must tile the data buffer exactly.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : tensors)
    by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo* t : by_offset) {
    if (t->begin < pos) {
      corrupt("tensors '" + prev->name + "' and '" + t->name + "' overlap in the data buffer");
    }
    if (t->begin > pos) {
      corrupt("bytes [" + std::to_string(pos) + ", " + std::to_string(t->begin) +
              ") of the data buffer belong to no tensor");
    }
    pos = t->end;
    prev = t;
  }
  if (pos != buffer_size) {
    corrupt("the data buffer has " + std::to_string(buffer_size - pos) +
            " trailing bytes that belong to no tensor");
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
}

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path.string();
  // O_NONBLOCK: open(2) of a FIFO would wait for a writer (regular files ignore the flag).
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    throw Error(impl->path + ": cannot open (" + std::strerror(errno) + ")");
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(impl->path + ": not a regular file");
  }
  impl->size = static_cast<size_t>(st.st_size);
  if (impl->size > 0) {
    void* m = mmap(nullptr, impl->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw Error(impl->path + ": cannot map (" + std::strerror(err) + ")");
    }
    impl->map = m;
    impl->map_size = impl->size;
    impl->base = static_cast<const std::byte*>(m);
  }
  ::close(fd);
  impl->parse();
  return SafetensorsFile(std::move(impl));
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<std::byte> bytes, const std::string& name) {
  auto impl = std::make_unique<Impl>();
  impl->path = name;
  impl->owned = std::move(bytes);
  impl->base = impl->owned.data();
  impl->size = impl->owned.size();
  impl->parse();
  return SafetensorsFile(std::move(impl));
}

const std::string& SafetensorsFile::path() const {
  return impl_->path;
}
const std::vector<TensorInfo>& SafetensorsFile::tensors() const {
  return impl_->tensors;
}
const std::map<std::string, std::string>& SafetensorsFile::metadata() const {
  return impl_->metadata;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(impl_->tensors.begin(), impl_->tensors.end(), name,
                             [](const TensorInfo& t, std::string_view n) { return t.name < n; });
  if (it == impl_->tensors.end() || it->name != name) return nullptr;
  return &*it;
}

const TensorInfo& SafetensorsFile::at(std::string_view name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) impl_->corrupt("missing tensor '" + std::string(name) + "'");
  return *t;
}

std::span<const std::byte> SafetensorsFile::data(const TensorInfo& info) const {
  return {impl_->base + impl_->data_start + info.begin, static_cast<size_t>(info.nbytes())};
}

// ---------------------------------------------------------------------------------------------
// Writing

void SafetensorsWriter::add(const std::string& name, Dtype dtype, std::vector<int64_t> shape,
                            std::span<const std::byte> data) {
  if (name.empty() || name == "__metadata__") {
    throw Error("safetensors: invalid tensor name '" + name + "'");
  }
  for (const auto& e : entries_) {
    if (e.name == name) throw Error("safetensors: duplicate tensor name '" + name + "'");
  }
  uint64_t expected = 0;
  if (!byte_count(shape, dtype_size(dtype), &expected) || expected != data.size()) {
    throw Error("safetensors: tensor '" + name + "' " + std::string(dtype_name(dtype)) + " " +
                shape_string(shape) + " does not match its " + std::to_string(data.size()) +
                " data bytes");
  }
  entries_.push_back({name, dtype, std::move(shape), {data.begin(), data.end()}});
}

void SafetensorsWriter::set_metadata(std::map<std::string, std::string> metadata) {
  metadata_ = std::move(metadata);
}

std::vector<std::byte> SafetensorsWriter::serialize() const {
  std::vector<const Entry*> order;
  for (const auto& e : entries_)
    order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Entry* e : order) {
    header[e->name] = {{"dtype", dtype_name(e->dtype)},
                       {"shape", e->shape},
                       {"data_offsets", {offset, offset + e->bytes.size()}}};
    offset += e->bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - (text.size() % 8)) % 8, ' ');
  const uint64_t header_len = text.size();
  std::vector<std::byte> out(8 + header_len + offset);
  std::memcpy(out.data(), &header_len, 8);
  std::memcpy(out.data() + 8, text.data(), header_len);
  std::byte* p = out.data() + 8 + header_len;
  for (const Entry* e : order) {
    if (!e->bytes.empty()) std::memcpy(p, e->bytes.data(), e->bytes.size());
    p += e->bytes.size();
  }
  return out;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  const std::vector<std::byte> bytes = serialize();
  write_file_atomic(path,
                    std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                    /*fsync=*/true);
}

}  // namespace s3::sae
