#include "worker/artifacts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "common/file_util.h"

namespace hpo::worker {

namespace fs = std::filesystem;

// Whether `value` fits `width`-1 octal digits (a 12-byte size field: below 8 GiB).
bool FitsOctal(std::size_t width, uint64_t value) { return (width - 1) * 3 >= 64 || value >> ((width - 1) * 3) == 0; }

void TarNumber(char* field, std::size_t width, uint64_t value) {
  // width-1 octal digits, zero-padded, and a NUL; a value too large for them (a model file of
  // 8 GiB or more) in GNU's base-256 form: 0x80, then the value big-endian in the other bytes,
  // as GNU tar and Python's tarfile write and read it. Cut to its low digits, the size made the
  // rest of the archive unreadable, and the training job still completed.
  if (!FitsOctal(width, value)) {
    field[0] = static_cast<char>(0x80);
    for (std::size_t i = width; i-- > 1;) {
      field[i] = static_cast<char>(value & 0xFF);
      value >>= 8;
    }
    return;
  }
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

namespace {

// Deflate streams, kept for the next archive: setting one up (about 270 KB of fresh memory,
// zeroed) and handing it back to the allocator each time cost more than packing an empty
// directory does. Thread-safe; streams are reset when taken.
class DeflateStreams {
 public:
  static DeflateStreams& Get() {
    static DeflateStreams* streams = new DeflateStreams;  // never destroyed: used until exit
    return *streams;
  }
  // A stream ready for a new gzip member (level 6, as gzopen "wb6"), or nullptr.
  z_stream* Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        z_stream* z = free_.back();
        free_.pop_back();
        if (::deflateReset(z) == Z_OK) return z;
        ::deflateEnd(z);
        delete z;
      }
    }
    auto* z = new z_stream{};
    if (::deflateInit2(z, 6, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      delete z;
      return nullptr;
    }
    return z;
  }
  void Give(z_stream* z) {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < kKeep) {
      free_.push_back(z);
      return;
    }
    ::deflateEnd(z);
    delete z;
  }

 private:
  static constexpr std::size_t kKeep = 16;
  std::mutex mu_;
  std::vector<z_stream*> free_;
};

// Sink for archive bytes: a gzip stream or a plain file. On failure errno says why.
class Sink {
 public:
  static Result<Sink> Open(const std::string& path, bool gzip) {
    Sink s;
    if (gzip) {
      s.z_ = DeflateStreams::Get().Take();
      if (s.z_ == nullptr) return Status::IoError("cannot write " + path + ": zlib cannot start a stream");
    }
    s.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (s.fd_ < 0) return Status::IoError("cannot write " + path + ": " + std::strerror(errno));
    s.buf_.resize(kBuffer);
    return s;
  }
  Sink() = default;
  Sink(Sink&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), z_(std::exchange(o.z_, nullptr)), buf_(std::move(o.buf_)), used_(o.used_) {}
  ~Sink() { (void)Close(); }
  bool Write(const char* p, std::size_t n) {
    if (n == 0) return true;
    if (z_ == nullptr) {
      while (n > 0) {
        if (used_ == buf_.size() && !Drain()) return false;
        const std::size_t take = std::min(n, buf_.size() - used_);
        std::memcpy(buf_.data() + used_, p, take);
        used_ += take;
        p += take;
        n -= take;
      }
      return true;
    }
    z_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
    z_->avail_in = static_cast<uInt>(n);  // archive writes are far below 4 GiB each
    return Deflate(Z_NO_FLUSH);
  }
  bool Close() {
    if (fd_ < 0) return true;
    bool ok = true;
    if (z_ != nullptr) {
      z_->next_in = nullptr;
      z_->avail_in = 0;
      ok = Deflate(Z_FINISH);
      DeflateStreams::Get().Give(std::exchange(z_, nullptr));
    }
    ok = Drain() && ok;
    const int saved = errno;
    if (::close(fd_) != 0) ok = false;
    else if (!ok) errno = saved;
    fd_ = -1;
    return ok;
  }

 private:
  static constexpr std::size_t kBuffer = 64 * 1024;

  // Compresses what z_ holds into the buffer, writing it out whenever it is full.
  bool Deflate(int flush) {
    for (;;) {
      if (used_ == buf_.size() && !Drain()) return false;
      z_->next_out = reinterpret_cast<Bytef*>(buf_.data() + used_);
      z_->avail_out = static_cast<uInt>(buf_.size() - used_);
      const int r = ::deflate(z_, flush);
      used_ = buf_.size() - z_->avail_out;
      if (r == Z_STREAM_END) return true;
      if (r != Z_OK && r != Z_BUF_ERROR) {
        errno = EIO;
        return false;
      }
      if (flush == Z_NO_FLUSH && z_->avail_in == 0) return true;
    }
  }

  // Writes the buffer out.
  bool Drain() {
    std::size_t done = 0;
    while (done < used_) {
      ssize_t n = ::write(fd_, buf_.data() + done, used_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0) errno = EIO;
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    used_ = 0;
    return true;
  }

  int fd_ = -1;
  z_stream* z_ = nullptr;
  std::vector<char> buf_;
  std::size_t used_ = 0;
};

std::string Header(const std::string& name, char type, uint64_t size, uint32_t mode, int64_t mtime,
                   const std::string& link, bool gnu) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<std::size_t>(name.size(), 100));
  TarNumber(&h[100], 8, mode & 07777);
  TarNumber(&h[108], 8, 0);
  TarNumber(&h[116], 8, 0);
  TarNumber(&h[124], 12, size);
  TarNumber(&h[136], 12, static_cast<uint64_t>(std::max<int64_t>(0, mtime)));
  h[156] = type;
  std::memcpy(&h[157], link.data(), std::min<std::size_t>(link.size(), 100));
  if (gnu) {
    std::memcpy(&h[257], "ustar  ", 8);
  } else {
    std::memcpy(&h[257], "ustar", 6);
    std::memcpy(&h[263], "00", 2);
  }
  std::memcpy(&h[265], "root", 4);
  std::memcpy(&h[297], "root", 4);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 8, "%06o", sum);
  h[155] = ' ';
  return h;
}

bool Pad(Sink& sink, uint64_t size) {
  static const char zeros[512] = {0};
  std::size_t pad = static_cast<std::size_t>((512 - size % 512) % 512);
  return sink.Write(zeros, pad);
}

// The data extents of a file with holes (SEEK_DATA / SEEK_HOLE), as (offset, length), ending with
// (size, 0) when the file ends in a hole; nullopt for a file without holes (or where the
// filesystem cannot say).
using Extents = std::vector<std::pair<uint64_t, uint64_t>>;
std::optional<Extents> DataExtents(int fd, uint64_t size) {
  Extents out;
  uint64_t data_total = 0;
  for (uint64_t at = 0; at < size;) {
    const off_t data = ::lseek(fd, static_cast<off_t>(at), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) return std::nullopt;
    if (static_cast<uint64_t>(data) >= size) break;
    const off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return std::nullopt;
    const uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
    out.emplace_back(static_cast<uint64_t>(data), end - static_cast<uint64_t>(data));
    data_total += end - static_cast<uint64_t>(data);
    at = end;
  }
  if (data_total == size) return std::nullopt;
  if (out.empty() || out.back().first + out.back().second < size) out.emplace_back(size, 0);
  return out;
}

// One PAX extended-header record: "<length> <key>=<value>\n", the length counting itself.
std::string PaxRecord(const std::string& key, const std::string& value) {
  const std::size_t body = 1 + key.size() + 1 + value.size() + 1;
  std::size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

// The program owns the tree and may change it while it is packed (a process it left running):
// an entry that is gone is left out, and a file is read only through a descriptor opened as a
// regular file without following a link (a FIFO swapped in blocked the packing for good, and a
// link swapped in packed a file of the host).
// Files already packed that have other names too (hard links), by device and inode: the member
// name they were packed under.
using PackedLinks = std::map<std::pair<dev_t, ino_t>, std::string>;

Status WriteEntry(Sink& sink, const std::string& root, const fs::path& path, const std::string& name,
                  const std::string& out_path, PackedLinks* packed) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();  // gone since the listing
    return Status::IoError("cannot read " + path.string() + ": " + std::strerror(errno));
  }
  OwnedFd file;
  if (S_ISREG(st.st_mode)) {
    uint64_t now = 0;
    auto opened = OpenRegularFileBeneath(root, name, &now);  // no link followed on the way down
    if (!opened.ok() && opened.status().code() != StatusCode::kIoError) return Status::Ok();  // gone, or swapped
    if (!opened.ok()) return opened.status();
    file = std::move(opened).value();
    st.st_size = static_cast<off_t>(now);  // the size of the file that will be read
  }
  std::string link;
  char type;
  uint64_t size = 0;
  std::string member = name;
  if (S_ISDIR(st.st_mode)) {
    type = '5';
    member += "/";
  } else if (S_ISLNK(st.st_mode)) {
    type = '2';
    std::error_code ec;
    link = fs::read_symlink(path, ec).string();
    if (ec) return Status::IoError("cannot read the link " + path.string() + ": " + ec.message());
  } else if (S_ISREG(st.st_mode)) {
    type = '0';
    size = static_cast<uint64_t>(st.st_size);
    // A file with several names in the tree (a checkpoint hard-linked as "latest", as some
    // trainers save) is packed once; its other names are hard-link entries, as tar writes them
    // (each was a full copy: an archive twice the model's size, and twice the upload).
    struct stat fst {};
    if (::fstat(file.get(), &fst) == 0 && fst.st_nlink > 1) {
      auto [at, first] = packed->try_emplace({fst.st_dev, fst.st_ino}, member);
      if (!first) {
        type = '1';
        size = 0;
        link = at->second;
      }
    }
  } else {
    return Status::Ok();  // sockets, FIFOs and devices are not artifacts
  }
  auto fail = [&] { return Status::IoError("cannot write " + out_path + ": " + std::strerror(errno)); };
  // Names and link targets over 100 bytes go in GNU long-name ('L') and long-link ('K') records
  // ahead of the entry, as GNU tar writes them; a long link target used to fail the upload as an
  // infrastructure error, retried to no end.
  auto long_record = [&](char kind, const std::string& text) {
    std::string body = text + '\0';
    std::string lh = Header("././@LongLink", kind, body.size(), 0644, 0, "", true);
    return sink.Write(lh.data(), lh.size()) && sink.Write(body.data(), body.size()) && Pad(sink, body.size());
  };
  // A file with holes (truncate -s 1T, a preallocated memory map) is written as GNU tar's PAX
  // sparse format 1.0: its data extents only, with their map; GNU tar, bsdtar and Python's
  // tarfile restore it, holes included. Read byte for byte, a 1 TB hole took hours of packing
  // (the file takes no blocks, so VolumeSizeInGB let it through) and a gigabyte of archive.
  const std::optional<Extents> extents = type == '0' ? DataExtents(file.get(), size) : std::nullopt;
  if (extents) {
    std::string map = std::to_string(extents->size()) + "\n";
    uint64_t data_size = 0;
    for (const auto& [offset, length] : *extents) {
      map += std::to_string(offset) + "\n" + std::to_string(length) + "\n";
      data_size += length;
    }
    map.resize((map.size() + 511) / 512 * 512, '\0');
    const std::string pax = PaxRecord("GNU.sparse.major", "1") + PaxRecord("GNU.sparse.minor", "0") +
                            PaxRecord("GNU.sparse.name", member) + PaxRecord("GNU.sparse.realsize", std::to_string(size));
    const std::string base = fs::path(member).filename().string();
    const std::string stand_in = "GNUSparseFile.0/" + base.substr(0, std::min<std::size_t>(base.size(), 84));
    const uint64_t stored = map.size() + data_size;
    std::string xh = Header("PaxHeaders.0/" + base.substr(0, std::min<std::size_t>(base.size(), 87)), 'x', pax.size(),
                            0644, st.st_mtime, "", false);
    std::string fh = Header(stand_in, '0', stored, st.st_mode, st.st_mtime, "", !FitsOctal(12, stored));
    if (!sink.Write(xh.data(), xh.size()) || !sink.Write(pax.data(), pax.size()) || !Pad(sink, pax.size()) ||
        !sink.Write(fh.data(), fh.size()) || !sink.Write(map.data(), map.size())) {
      return fail();
    }
    std::vector<char> buf(1 << 20);
    for (auto [offset, left] : *extents) {
      while (left > 0) {
        const ssize_t got = ::pread(file.get(), buf.data(), static_cast<std::size_t>(std::min<uint64_t>(left, buf.size())),
                                    static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          return Status::IoError("cannot read " + path.string() + ": " +
                                 (got < 0 ? std::strerror(errno) : "it shrank while it was read"));
        }
        if (!sink.Write(buf.data(), static_cast<std::size_t>(got))) return fail();
        offset += static_cast<uint64_t>(got);
        left -= static_cast<uint64_t>(got);
      }
    }
    if (!Pad(sink, stored)) return fail();
    return Status::Ok();
  }
  if (type == '0' && ::lseek(file.get(), 0, SEEK_SET) != 0) {
    return Status::IoError("cannot read " + path.string() + ": " + std::strerror(errno));
  }
  if (member.size() > 100 && !long_record('L', member)) return fail();
  if (link.size() > 100 && !long_record('K', link)) return fail();
  const bool gnu = member.size() > 100 || link.size() > 100 || !FitsOctal(12, size);
  std::string h = Header(member, type, size, st.st_mode, st.st_mtime, link, gnu);
  if (!sink.Write(h.data(), h.size())) return fail();
  if (type != '0') return Status::Ok();
  std::vector<char> buf(1 << 20);
  uint64_t left = size;
  while (left > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(left, buf.size()));
    HPO_RETURN_IF_ERROR(ReadExactly(file.get(), buf.data(), n, path.string()));
    if (!sink.Write(buf.data(), n)) return fail();
    left -= n;
  }
  if (!Pad(sink, size)) return fail();
  return Status::Ok();
}

Status Walk(Sink& sink, const std::string& root, const fs::path& dir, const std::string& prefix,
            const std::string& out_path, PackedLinks* packed) {
  std::vector<fs::path> children;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) children.push_back(it->path());
  if (ec) return Status::IoError("cannot list " + dir.string() + ": " + ec.message());
  std::sort(children.begin(), children.end());
  for (const auto& c : children) {
    std::string name = prefix + c.filename().string();
    HPO_RETURN_IF_ERROR(WriteEntry(sink, root, c, name, out_path, packed));
    if (IsRealDirectory(c.string())) HPO_RETURN_IF_ERROR(Walk(sink, root, c, name + "/", out_path, packed));
  }
  return Status::Ok();
}

std::string JoinUri(std::string base, const std::string& rest) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + rest;
}

}  // namespace

Status WriteTar(const std::string& dir, const std::string& out_path, bool gzip) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::IoError("cannot pack " + dir + ": not a directory");
  auto sink = Sink::Open(out_path, gzip);
  if (!sink.ok()) return sink.status();
  // A directory the program replaced with a link (to a directory of the host) is not followed:
  // the archive is empty (as the merge of a multi-host model notes, MergeParts).
  PackedLinks packed;
  Status s = IsRealDirectory(dir) ? Walk(*sink, dir, dir, "", out_path, &packed) : Status::Ok();
  if (s.ok()) {
    static const char zeros[1024] = {0};
    if (!sink->Write(zeros, sizeof zeros)) s = Status::IoError("cannot write " + out_path);
  }
  if (!sink->Close() && s.ok()) s = Status::IoError("cannot write " + out_path + ": " + std::strerror(errno));
  if (!s.ok()) fs::remove(out_path, ec);
  return s;
}

void PrepareArtifactDirectory(const ArtifactSpec& spec) {
  auto loc = OpenObjectLocation(spec.output_path, [] { return Result<const S3Client*>(Status::Unavailable("unused")); });
  if (!loc.ok()) return;
  const std::string path = loc->store->LocalPath(loc->Key(spec.job_name + "/output"));
  if (path.empty()) return;
  std::error_code ec;
  fs::create_directories(path, ec);
}

namespace {

// Appends one clause to a log note ("a; b").
void AddNote(std::string* note, const std::string& line) { *note += (note->empty() ? "" : "; ") + line; }

// CompressionType NONE: the files of `dir` as objects `<prefix><relative path>` (prefix ends with
// '/'); with `replace`, whatever else was under the prefix (an earlier attempt's files) is
// deleted, so that the prefix holds exactly the directory. The keys written are added to `keys`.
// A link to a file in the directory goes up as that file, as `aws s3 sync` uploads it (tar keeps
// it as a link); other links are left out, each named in `note` under `kind` (a model's links
// vanished without a word; a contract pass). A directory that is a link, or not there, is empty.
Status UploadTree(const fs::path& dir, const ObjectLocation& loc, const std::string& prefix, bool replace,
                  std::set<std::string>* keys, const std::string& kind, std::string* note) {
  std::map<std::string, std::string> skipped;
  Result<std::map<std::string, std::string>> files = std::map<std::string, std::string>{};
  if (IsRealDirectory(dir.string())) files = FilesBeneath(dir.string(), &skipped);
  if (!files.ok()) return files.status();
  if (!skipped.empty()) {
    std::string links;
    for (const auto& [name, why] : skipped) links += (links.empty() ? "" : ", ") + name + " " + why;
    AddNote(note, kind + ": left out " + std::to_string(skipped.size()) + " link(s): " + links);
  }
  Result<std::vector<ObjectInfo>> before = std::vector<ObjectInfo>{};
  if (replace) before = loc.store->List(prefix);
  if (!before.ok()) return before.status();
  std::set<std::string> written;
  for (const auto& [rel, source] : *files) {
    const std::string key = prefix + rel;
    // Opened from the directory down, no link followed on the way: the tree is the program's.
    uint64_t size = 0;
    auto in = OpenRegularFileBeneath(dir.string(), source, &size);
    if (!in.ok()) {
      // Gone, or swapped for a link or a FIFO (or a directory above it for a link), since the
      // listing: left out, as the listing leaves such entries out.
      const StatusCode c = in.status().code();
      if (c == StatusCode::kNotFound || c == StatusCode::kInvalidArgument) continue;
      return in.status();
    }
    HPO_RETURN_IF_ERROR(loc.store->PutOpened(key, in->get(), size, (dir / source).string()));
    written.insert(key);
  }
  for (const ObjectInfo& o : *before) {
    if (!written.count(o.key)) HPO_RETURN_IF_ERROR(loc.store->Delete(o.key));
  }
  if (keys) keys->insert(written.begin(), written.end());
  return Status::Ok();
}


// A part's key below its host's prefix, as a relative path that stays inside the directory it
// is copied into; nullopt for anything else ("..", an absolute path, empty components).
std::optional<fs::path> SafeRelative(const std::string& rel) {
  if (rel.empty() || rel.front() == '/') return std::nullopt;
  fs::path out;
  size_t start = 0;
  while (start <= rel.size()) {
    const size_t end = std::min(rel.find('/', start), rel.size());
    const std::string part = rel.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return std::nullopt;
    out /= part;
    start = end + 1;
  }
  return out;
}

// Algo-1's merge of one directory (`kind`: "model" or "data"): every file that the hosts in
// `handed` (those whose hand-over is complete) put under the parts prefix that `dir` has no entry
// at (nor a file where it needs a directory) is fetched into it, the lower host first. What it
// took, for the log, is appended to `note`.
Status MergeParts(const ArtifactSpec& spec, const ObjectLocation& loc, const std::string& kind, const fs::path& dir,
                  const std::set<std::string>& handed, std::string* note) {
  // The program may have put a link where its directory was (to /etc, say): nothing another
  // host's program named is written through one.
  std::error_code lec;
  for (fs::path at = dir; at != fs::path(spec.root) && at.has_relative_path(); at = at.parent_path()) {
    if (fs::is_symlink(fs::symlink_status(at, lec))) {
      AddNote(note, kind + ": the other hosts' files were not merged: " + at.string() + " is a symbolic link");
      return Status::Ok();
    }
  }
  std::string took;
  size_t kept = 0;
  std::vector<std::string> hosts = spec.hosts;  // algo-2 before algo-10
  std::sort(hosts.begin(), hosts.end(), [](const std::string& a, const std::string& b) {
    return std::pair(a.size(), a) < std::pair(b.size(), b);
  });
  for (const std::string& host : hosts) {
    if (host == spec.host || !handed.count(host)) continue;  // a host still handing over is not half merged
    const std::string prefix = loc.Key(PartsPrefix(spec) + host + "/" + kind + "/");
    auto objects = loc.store->List(prefix);
    if (!objects.ok()) {
      return Status(objects.status().code(), "cannot list what " + host + " uploaded of its " + kind + ": " +
                                                 objects.status().message());
    }
    size_t n = 0;
    for (const ObjectInfo& o : *objects) {
      if (o.key.size() <= prefix.size() || o.key.back() == '/') continue;
      const auto rel = SafeRelative(o.key.substr(prefix.size()));
      if (!rel) continue;
      // An entry there already (algo-1's, or a lower host's), or a file where this one needs a
      // directory: the earlier one stays.
      bool taken = false;
      fs::path at = dir;
      for (auto it = rel->begin(); it != rel->end() && !taken; ++it) {
        at /= *it;
        std::error_code ec;
        const fs::file_status st = fs::symlink_status(at, ec);
        const bool last = std::next(it) == rel->end();
        if (fs::exists(st) && (last || !fs::is_directory(st))) taken = true;
      }
      if (taken) {
        ++kept;
        continue;
      }
      const fs::path target = dir / *rel;
      std::error_code ec;
      fs::create_directories(target.parent_path(), ec);
      if (ec) return Status::IoError("cannot create " + target.parent_path().string() + ": " + ec.message());
      HPO_RETURN_IF_ERROR(loc.store->GetToFile(o.key, target.string()));
      ++n;
    }
    if (n > 0) took += (took.empty() ? "" : ", ") + std::to_string(n) + (n == 1 ? " file from " : " files from ") + host;
  }
  if (took.empty() && kept == 0) return Status::Ok();
  std::string line = kind + ": " + (took.empty() ? "nothing" : took) + " merged";
  if (kept > 0) {
    line += "; " + std::to_string(kept) + (kept == 1 ? " path" : " paths") +
            " another host also wrote kept as the lower host's";
  }
  AddNote(note, line);
  return Status::Ok();
}

constexpr const char* kPackedMarker = "packed";  // algo-1's, under PartsPrefix(): its upload is done

// The hosts other than algo-1 whose hand-over is complete (their .done object is there).
std::set<std::string> HandedOverHosts(const ArtifactSpec& spec, const ObjectLocation& loc) {
  std::set<std::string> out;
  for (size_t i = 1; i < spec.hosts.size(); ++i) {
    if (loc.store->Get(loc.Key(PartsPrefix(spec) + spec.hosts[i] + ".done")).ok()) out.insert(spec.hosts[i]);
  }
  return out;
}

// Those of the hosts other than algo-1 that are not in `handed`: "algo-2, algo-3", or "".
std::string NotIn(const ArtifactSpec& spec, const std::set<std::string>& handed) {
  std::string missing;
  for (size_t i = 1; i < spec.hosts.size(); ++i) {
    if (!handed.count(spec.hosts[i])) missing += (missing.empty() ? "" : ", ") + spec.hosts[i];
  }
  return missing;
}

// The attempt number of a key under <job>/output/.hpo-hosts/ ("attempt-3/algo-2/model/x" -> 3);
// 0 for anything else.
uint32_t PartsAttempt(const std::string& below) {
  static constexpr std::string_view kAttempt = "attempt-";
  if (below.compare(0, kAttempt.size(), kAttempt) != 0) return 0;
  uint64_t n = 0;
  size_t i = kAttempt.size();
  for (; i < below.size() && i < kAttempt.size() + 9 && below[i] >= '0' && below[i] <= '9'; ++i) n = n * 10 + (below[i] - '0');
  return i < below.size() && below[i] == '/' ? static_cast<uint32_t>(n) : 0;
}

// Under <job>/output/.hpo-hosts/: the folders of attempts before this one (leftovers of hosts
// lost in the middle of a hand-over), and this attempt's when `with_this`; never a later
// attempt's (a retry already running when a stopped attempt's algo-1 packs at last). Another
// host removing the same folder at the same time is no error.
Status RemoveParts(const ArtifactSpec& spec, const ObjectLocation& loc, bool with_this) {
  const uint32_t last = with_this ? spec.attempt : (spec.attempt > 0 ? spec.attempt - 1 : 0);
  const std::string root = loc.Key(spec.job_name + "/output/.hpo-hosts/");
  if (const std::string local = loc.store->LocalPath(root); !local.empty()) {
    std::error_code ec;
    for (fs::directory_iterator it(local, ec), end; !ec && it != end; it.increment(ec)) {
      if (PartsAttempt(it->path().filename().string() + "/") > last) continue;
      std::error_code rec;
      for (int tries = 0; tries < 3; ++tries) {  // a file another host removed first fails one pass
        rec.clear();
        fs::remove_all(it->path(), rec);
        if (!rec || !fs::exists(fs::symlink_status(it->path()))) break;
      }
      if (rec && fs::exists(fs::symlink_status(it->path()))) {
        return Status::IoError("cannot remove " + it->path().string() + ": " + rec.message());
      }
    }
    if (fs::is_empty(local, ec)) fs::remove(local, ec);
    return Status::Ok();
  }
  auto objects = loc.store->List(root);
  if (!objects.ok()) return objects.status();
  for (const ObjectInfo& o : *objects) {
    if (PartsAttempt(o.key.substr(root.size())) <= last) HPO_RETURN_IF_ERROR(loc.store->Delete(o.key));
  }
  return Status::Ok();
}

// CompressionType NONE, algo-1 once every other host's list of keys (<host>.keys) is there:
// whatever else is under output/model/ and output/data/ (an earlier attempt's files, which no
// host of this one wrote) is deleted. `own`: the keys algo-1 wrote. A list that cannot be read
// leaves everything, and the note says so.
void PruneEarlierAttempts(const ArtifactSpec& spec, const ObjectLocation& loc, const std::set<std::string>& own,
                          std::string* note) {
  const std::string rel = spec.job_name + "/output/";
  std::set<std::string> keep = own;
  std::map<std::string, std::vector<std::string>> writers;  // a path the other hosts wrote -> they
  for (size_t i = 1; i < spec.hosts.size(); ++i) {
    auto list = loc.store->Get(loc.Key(PartsPrefix(spec) + spec.hosts[i] + ".keys"));
    if (!list.ok()) {
      AddNote(note, "earlier attempts' files were kept: the list of what " + spec.hosts[i] +
                        " uploaded cannot be read: " + list.status().message());
      return;
    }
    size_t start = 0;
    while (start < list->size()) {
      const size_t end = std::min(list->find('\n', start), list->size());
      if (end > start) {
        keep.insert(loc.Key(rel + list->substr(start, end - start)));
        writers[list->substr(start, end - start)].push_back(spec.hosts[i]);
      }
      start = end + 1;
    }
  }
  // Uploaded side by side, a path several other hosts wrote (algo-1's own overwrote theirs) is the
  // copy of whichever came last: said, as the archive's is the lowest host's (a gangs pass read
  // algo-3's where the README promised algo-2's).
  std::string shared;
  size_t shared_count = 0;
  for (const auto& [path, hosts] : writers) {
    if (hosts.size() < 2 || own.count(loc.Key(rel + path))) continue;
    if (++shared_count <= 3) {
      std::string by;
      for (const std::string& h : hosts) by += (by.empty() ? "" : ", ") + h;
      shared += (shared.empty() ? "" : "; ") + path + " (" + by + ")";
    }
  }
  if (shared_count > 0) {
    AddNote(note, std::to_string(shared_count) + " path(s) that several hosts wrote hold the copy uploaded last: " +
                      shared + (shared_count > 3 ? "; ..." : ""));
  }
  size_t removed = 0;
  for (const std::string kind : {"model/", "data/"}) {
    auto objects = loc.store->List(loc.Key(rel + kind));
    if (!objects.ok()) {
      AddNote(note, "earlier attempts' files were kept: cannot list " + JoinUri(spec.output_path, rel + kind) + ": " +
                        objects.status().message());
      return;
    }
    for (const ObjectInfo& o : *objects) {
      if (keep.count(o.key)) continue;
      if (Status st = loc.store->Delete(o.key); !st.ok()) {
        AddNote(note, "an earlier attempt's file was kept: " + st.message());
        return;
      }
      ++removed;
    }
  }
  if (removed > 0) {
    AddNote(note, std::to_string(removed) + (removed == 1 ? " file" : " files") + " of an earlier attempt removed");
  }
}

// The end of a multi-host attempt's hand-over, once this host's marker is up (algo-1's "packed",
// another host's .done): whoever finds every marker there removes the attempt's folder. Each one
// writes its marker before it looks, so the last of them to write sees all of them: the folder
// goes even when a host hands over after algo-1 packed (algo-1 failed first). `primary`: algo-1,
// which also removes earlier attempts' folders, and this one's when the coordinator said its peers
// had ended (ArtifactSpec::peers_ended). What it could not remove is added to `note`.
void SettleHandOver(const ArtifactSpec& spec, const ObjectLocation& loc, std::string* note) {
  const bool all = (spec.primary && spec.peers_ended) ||
                   ((spec.primary || loc.store->Get(loc.Key(PartsPrefix(spec) + kPackedMarker)).ok()) &&
                    NotIn(spec, HandedOverHosts(spec, loc)).empty());
  if (!all && !spec.primary) return;
  if (Status removed = RemoveParts(spec, loc, /*with_this=*/all); !removed.ok()) {
    AddNote(note, "the other hosts' files under " + JoinUri(spec.output_path, spec.job_name + "/output/.hpo-hosts/") +
                      " could not be removed: " + removed.message());
  }
}

// Algo-1's end of a multi-host attempt's hand-over: its "packed" marker, then SettleHandOver.
// What could not be written or removed is added to `note`.
void MarkPacked(const ArtifactSpec& spec, const ObjectLocation& loc, std::string* note) {
  if (Status packed = loc.store->PutBytes(loc.Key(PartsPrefix(spec) + kPackedMarker), ""); !packed.ok()) {
    AddNote(note, "the hand-over folder stays: " + packed.message());
    return;
  }
  SettleHandOver(spec, loc, note);
}

// CompressionType NONE: the files themselves, under output/model/ and output/data/; what
// DescribeTrainingJob's S3ModelArtifacts then names is the model's prefix. Across hosts, the
// others list their keys and algo-1 removes what none of them wrote (an earlier attempt's).
Status UploadFiles(const ArtifactSpec& spec, const ObjectLocation& loc, const std::set<std::string>& handed,
                   UploadedArtifacts* out) {
  const std::string rel = spec.job_name + "/output/";
  std::set<std::string> keys;
  for (const auto& [dir, name, uri] : {std::tuple{fs::path(spec.root) / "model", std::string("model/"), &out->model},
                                       std::tuple{fs::path(spec.root) / "output" / "data", std::string("data/"),
                                                  &out->output_data}}) {
    HPO_RETURN_IF_ERROR(UploadTree(dir, loc, loc.Key(rel + name), spec.replace && !spec.Gang(), &keys,
                                   name.substr(0, name.size() - 1), &out->note));
    const std::string local = loc.store->LocalPath(loc.Key(rel + name.substr(0, name.size() - 1)));
    std::error_code ec;
    if (!local.empty()) fs::create_directories(local, ec);  // an empty model is an empty directory there
    *uri = JoinUri(spec.output_path, rel + name);
  }
  if (spec.Gang() && !spec.primary) {  // what it wrote, for algo-1 to tell an earlier attempt's files apart
    std::string list;
    for (const std::string& key : keys) list += key.substr(loc.Key(rel).size()) + "\n";
    return loc.store->PutBytes(loc.Key(PartsPrefix(spec) + spec.host + ".keys"), list);
  }
  if (!spec.Gang()) return Status::Ok();
  if (const std::string missing = NotIn(spec, handed); missing.empty()) {
    PruneEarlierAttempts(spec, loc, keys, &out->note);
  } else {
    AddNote(&out->note, "earlier attempts' files were kept: " + missing +
                              (missing.find(',') == std::string::npos ? " has" : " have") + " not said what it uploaded");
  }
  return Status::Ok();
}

// Compressed: model.tar.gz and output.tar.gz; across hosts, the others hand their files over and
// algo-1 merges those of `handed` into its archives.
Status UploadArchives(const ArtifactSpec& spec, const ObjectLocation& loc, const std::set<std::string>& handed,
                      UploadedArtifacts* out) {
  const std::string rel = spec.job_name + "/output/";
  const std::string ext = ".tar.gz";
  struct One {
    std::string dir, name, kind;
    std::string* uri;
  };
  for (const One& one : {One{(fs::path(spec.root) / "model").string(), "model" + ext, "model", &out->model},
                         One{(fs::path(spec.root) / "output" / "data").string(), "output" + ext, "data",
                             &out->output_data}}) {
    std::error_code ec;
    fs::create_directories(one.dir, ec);  // a program that removed it still gets an (empty) archive
    if (!spec.primary && spec.Merges()) {  // its files, for algo-1 to merge
      HPO_RETURN_IF_ERROR(UploadTree(one.dir, loc, loc.Key(PartsPrefix(spec) + spec.host + "/" + one.kind + "/"),
                                     /*replace=*/false, nullptr, one.kind, &out->note));
      *one.uri = JoinUri(spec.output_path, rel + one.name);  // algo-1's, where it will be
      continue;
    }
    if (!spec.primary && fs::is_empty(one.dir, ec) && !ec) {
      *one.uri = JoinUri(spec.output_path, rel + one.name);  // algo-1's, where it is
      continue;
    }
    if (spec.primary && spec.Merges()) HPO_RETURN_IF_ERROR(MergeParts(spec, loc, one.kind, one.dir, handed, &out->note));
    const std::string key = loc.Key(rel + one.name);
    const std::string path = loc.store->LocalPath(key);
    if (path.empty()) {  // a remote store: packed in the scratch directory, then uploaded
      const std::string archive = (fs::path(spec.scratch_dir) / one.name).string();
      HPO_RETURN_IF_ERROR(WriteTar(one.dir, archive, /*gzip=*/true));
      Status put = loc.store->PutFile(key, archive);
      fs::remove(archive, ec);
      HPO_RETURN_IF_ERROR(put);
    } else {
      fs::create_directories(fs::path(path).parent_path(), ec);
      if (ec) return Status::IoError("cannot create " + fs::path(path).parent_path().string() + ": " + ec.message());
      // A local destination: packed straight into a temporary name beside it, then renamed, so
      // there is no scratch copy and no reader sees half a file. The name is unique per process
      // and call (workers of one process may upload the same trial's attempts).
      static std::atomic<uint64_t> counter{0};
      // What a worker killed in the middle of this left (the same name, another pid) goes first.
      RemoveStaleTemporaries(fs::path(path).parent_path().string(), fs::path(path).filename().string() + ".tmp-");
      const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
      HPO_RETURN_IF_ERROR(WriteTar(one.dir, tmp, /*gzip=*/true));  // removes tmp when it fails
      if (Status gate = CommitGate::Check(); !gate.ok()) {  // (common/object_store.h) packing took a while
        fs::remove(tmp, ec);
        return gate;
      }
      fs::rename(tmp, path, ec);
      if (ec) {
        const std::string why = ec.message();
        fs::remove(tmp, ec);
        return Status::IoError("cannot write " + path + ": " + why);
      }
    }
    *one.uri = JoinUri(spec.output_path, rel + one.name);
  }
  return Status::Ok();
}

}  // namespace

Result<UploadedArtifacts> UploadArtifacts(const ArtifactSpec& spec, const std::function<Result<const S3Client*>()>& s3) {
  if (spec.output_path.empty()) return Status::InvalidArgument("the S3OutputPath is empty");
  auto loc = OpenObjectLocation(spec.output_path, s3);
  if (!loc.ok()) return Status::InvalidArgument("the S3OutputPath " + loc.status().message());
  UploadedArtifacts out;
  // A multi-host attempt: algo-1 takes what the others handed over completely before it began.
  const std::set<std::string> handed = spec.primary && spec.Gang() ? HandedOverHosts(spec, *loc) : std::set<std::string>{};
  HPO_RETURN_IF_ERROR(spec.compress ? UploadArchives(spec, *loc, handed, &out) : UploadFiles(spec, *loc, handed, &out));
  if (!spec.Gang()) return out;
  // The hand-over's markers: every host writes its own, also with nothing handed over, so that
  // the last one can tell that the attempt's folder is no longer needed (SettleHandOver).
  if (!spec.primary) {
    HPO_RETURN_IF_ERROR(loc->store->PutBytes(loc->Key(PartsPrefix(spec) + spec.host + ".done"), ""));
    out.handed_over = true;
    SettleHandOver(spec, *loc, &out.note);
    return out;
  }
  if (const std::string missing = NotIn(spec, handed); !missing.empty() && spec.compress) {
    const bool one = missing.find(',') == std::string::npos;
    AddNote(&out.note, "not merged: " + missing +
                             (one ? " had not handed its files over (it ended after algo-1, or was lost"
                                  : " had not handed their files over (they ended after algo-1, or were lost") +
                             "; or a local output path that not every worker shares)");
  }
  MarkPacked(spec, *loc, &out.note);  // the archives are up: a hand-over left behind fails nothing
  return out;
}

Status AbandonHandOver(const ArtifactSpec& spec, const std::function<Result<const S3Client*>()>& s3) {
  if (!spec.primary || !spec.Gang() || spec.output_path.empty()) return Status::Ok();
  auto loc = OpenObjectLocation(spec.output_path, s3);
  if (!loc.ok()) return loc.status();
  std::string note;
  MarkPacked(spec, *loc, &note);
  return note.empty() ? Status::Ok() : Status::IoError(note);
}

Status DiscardHandOverFolder(const std::string& output_path, const std::string& job_name, uint32_t attempt,
                             const std::function<Result<const S3Client*>()>& s3) {
  if (output_path.empty()) return Status::InvalidArgument("the S3OutputPath is empty");
  auto loc = OpenObjectLocation(output_path, s3);
  if (!loc.ok()) return Status::InvalidArgument("the S3OutputPath " + loc.status().message());
  ArtifactSpec spec;
  spec.output_path = output_path;
  spec.job_name = job_name;
  spec.attempt = attempt;
  return RemoveParts(spec, *loc, /*with_this=*/true);
}

bool HandedOver(const ArtifactSpec& spec, const std::function<Result<const S3Client*>()>& s3) {
  auto loc = OpenObjectLocation(spec.output_path, s3);
  return loc.ok() && NotIn(spec, HandedOverHosts(spec, *loc)).empty();
}

std::string PartsPrefix(const ArtifactSpec& spec) {
  return spec.job_name + "/output/.hpo-hosts/attempt-" + std::to_string(spec.attempt) + "/";
}

std::string IntermediateUri(const ArtifactSpec& spec) {
  return JoinUri(spec.output_path, spec.job_name + "/output/intermediate");
}

}  // namespace hpo::worker
