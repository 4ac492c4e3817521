#include "common/object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "common/file_util.h"

namespace hpo {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTmpMark = ".hpo-tmp-";
thread_local CommitGate* current_gate = nullptr;

// Writes through a temporary name beside `to`, then renames: `to` is never half written.
Status WriteAtomically(const fs::path& to, const std::function<Status(const fs::path&)>& write) {
  static std::atomic<uint64_t> counter{0};
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec) return Status::IoError("cannot create " + to.parent_path().string() + ": " + ec.message());
  // Under a name nobody reads; what a writer killed before its rename left goes first.
  RemoveStaleTemporaries(to.parent_path().string(), std::string(kTmpMark) + to.filename().string() + "-");
  const fs::path tmp = to.parent_path() / (std::string(kTmpMark) + to.filename().string() + "-" +
                                           std::to_string(::getpid()) + "-" + std::to_string(++counter));
  Status s = write(tmp);
  if (s.ok()) s = CommitGate::Check();
  if (s.ok()) {
    fs::rename(tmp, to, ec);
    if (ec) s = Status::IoError("cannot rename " + tmp.string() + " to " + to.string() + ": " + ec.message());
  }
  if (!s.ok()) fs::remove(tmp, ec);
  return s;
}

}  // namespace

CommitGate::CommitGate(std::function<Status()> check) : check_(std::move(check)), outer_(current_gate) {
  current_gate = this;
}

CommitGate::~CommitGate() { current_gate = outer_; }

Status CommitGate::Check() {
  for (const CommitGate* g = current_gate; g != nullptr; g = g->outer_) {
    if (g->check_) HPO_RETURN_IF_ERROR(g->check_());
  }
  return Status::Ok();
}

std::string RelativePathProblem(const std::string& key) {
  if (key.empty()) return "is empty";
  if (key[0] == '/') return "is absolute (a leading '/')";
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    const std::string part = key.substr(start, end - start);
    // (Refused wherever it points: "a/../b.csv" stays inside, but no file can be named so, and
    // one that climbs out would write outside the directory.)
    if (part == "..") {
      return "has a \"..\" segment, which no file can be named and which could land outside the directory";
    }
    if (part.empty() || part == ".") {
      return "has an empty or \".\" segment (\"//\", \"/./\", or a trailing '/'), which no file can be named";
    }
    if (part.size() > 255) return "has a segment of " + std::to_string(part.size()) + " bytes; file names are at most 255";
    start = end + 1;
  }
  return "";
}

bool IsCleanRelativePath(const std::string& key) { return RelativePathProblem(key).empty(); }

// ---- local -------------------------------------------------------------------------------------

LocalObjectStore::LocalObjectStore(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Result<std::string> LocalObjectStore::PathOf(const std::string& key) const {
  if (!IsCleanRelativePath(key)) return Status::InvalidArgument("\"" + key + "\" is not a clean relative path");
  return root_ == "/" ? "/" + key : root_ + "/" + key;
}

std::string LocalObjectStore::Uri(const std::string& key) const {
  return "file://" + (root_ == "/" ? "/" + key : root_ + "/" + key);
}

std::string LocalObjectStore::LocalPath(const std::string& key) const {
  auto p = PathOf(key);
  return p.ok() ? *p : "";
}

Result<std::vector<ObjectInfo>> LocalObjectStore::List(const std::string& prefix) const {
  // Only what the prefix can reach is walked: the entries of the directory holding its last
  // component whose names start with that component (a file, or a tree walked whole).
  const size_t slash = prefix.rfind('/');
  const std::string dir_key = slash == std::string::npos ? "" : prefix.substr(0, slash);
  const std::string head = slash == std::string::npos ? prefix : prefix.substr(slash + 1);
  const fs::path dir = dir_key.empty() ? fs::path(root_) : fs::path(root_) / dir_key;
  std::vector<ObjectInfo> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    // Missing, it holds nothing (as an empty S3 prefix). A file where a directory of the path
    // should be, or a path that cannot be read, is an error: read as empty, a restore emptied
    // the checkpoint directory it was to fill.
    for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
      std::error_code pec;
      const fs::file_status st = fs::status(p, pec);
      if (st.type() == fs::file_type::not_found) {
        if (p == p.root_path()) break;
        continue;
      }
      if (pec) return Status::IoError("cannot read " + p.string() + ": " + pec.message());
      if (st.type() != fs::file_type::directory) return Status::IoError(p.string() + " is not a directory");
      break;
    }
    return out;
  }
  auto add = [&](const fs::path& file) {
    std::error_code sec;
    if (file.filename().string().rfind(kTmpMark, 0) == 0) return;  // a write in progress
    // Lexically: fs::relative resolves symlinks, and the key of a symlinked file (a dataset
    // linked in, a directory reached through a link) fell outside the prefix, so the file was
    // dropped from a channel, and a checkpoint restore cut its key out of range.
    const std::string key = file.lexically_relative(root_).generic_string();
    if (key.empty() || key.rfind("..", 0) == 0) return;
    const auto size = fs::file_size(file, sec);
    if (!sec) out.push_back({key, size, ""});
  };
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(head, 0) != 0) continue;
    std::error_code sec;
    if (it->is_regular_file(sec)) {
      add(it->path());
    } else if (it->is_directory(sec)) {
      fs::recursive_directory_iterator sub(it->path(), fs::directory_options::follow_directory_symlink, sec), send;
      for (; !sec && sub != send; sub.increment(sec)) {
        std::error_code fec;
        if (sub->is_regular_file(fec)) add(sub->path());
      }
      if (sec) return Status::IoError("cannot list " + it->path().string() + ": " + sec.message());
    }
  }
  if (ec) return Status::IoError("cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Result<std::string> LocalObjectStore::Get(const std::string& key) const {
  auto path = PathOf(key);
  if (!path.ok()) return path.status();
  std::error_code ec;
  if (!fs::is_regular_file(*path, ec)) return Status::NotFound(*path + " does not exist or is not a file");
  std::ifstream in(*path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) return Status::IoError("cannot read " + *path);
  return ss.str();
}

Status LocalObjectStore::GetToFile(const std::string& key, const std::string& to) const {
  auto path = PathOf(key);
  if (!path.ok()) return path.status();
  std::error_code ec;
  if (!fs::is_regular_file(*path, ec)) return Status::NotFound(*path + " does not exist or is not a file");
  fs::copy_file(*path, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    fs::remove(to, ec);
    return Status::IoError("cannot copy " + *path + " to " + to + ": " + ec.message());
  }
  return Status::Ok();
}

Status LocalObjectStore::PutFile(const std::string& key, const std::string& from) const {
  uint64_t size = 0;
  auto in = OpenRegularFile(from, &size);
  if (!in.ok()) return in.status();
  return PutOpened(key, in->get(), size, from);
}

Status LocalObjectStore::PutOpened(const std::string& key, int fd, uint64_t size, const std::string& name) const {
  auto path = PathOf(key);
  if (!path.ok()) return path.status();
  // Holes stay holes: a program's sparse file (truncate -s 1T) takes no blocks in its volume,
  // and copied byte for byte it filled the destination's disk. Only the data extents are read and
  // written (SEEK_DATA / SEEK_HOLE), at their offsets, and the copy is cut to the size.
  const off_t start = ::lseek(fd, 0, SEEK_CUR);
  return WriteAtomically(*path, [&](const fs::path& tmp) -> Status {
    OwnedFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (out.get() < 0) return Status::IoError("cannot create " + tmp.string() + ": " + std::strerror(errno));
    auto fail = [&] { return Status::IoError("cannot copy " + name + " to " + tmp.string() + ": " + std::strerror(errno)); };
    const off_t base = start < 0 ? 0 : start;
    const off_t end = base + static_cast<off_t>(size);
    std::vector<char> buf(1 << 20);
    for (off_t at = base; at < end;) {
      off_t data = ::lseek(fd, at, SEEK_DATA);
      if (data < 0 && errno == ENXIO) {
        // Only a hole is left, or the file is shorter than it was: truncated while it was copied
        // (a program rewriting its checkpoint), which padded to `size` would go up as zeros.
        struct stat now {};
        if (::fstat(fd, &now) == 0 && now.st_size < end) {
          return Status::Unavailable(name + " changed while it was copied (" + std::to_string(now.st_size - base) +
                                     " bytes now, " + std::to_string(size) + " when the copy began)");
        }
        break;
      }
      if (data < 0) data = at;                // no SEEK_DATA here: all of it is data
      if (data >= end) break;
      off_t hole = ::lseek(fd, data, SEEK_HOLE);
      if (hole < 0 || hole > end) hole = end;
      if (::lseek(fd, data, SEEK_SET) < 0) return fail();
      for (off_t pos = data; pos < hole;) {
        const std::size_t n = static_cast<std::size_t>(std::min<off_t>(hole - pos, static_cast<off_t>(buf.size())));
        HPO_RETURN_IF_ERROR(ReadExactly(fd, buf.data(), n, name));
        for (std::size_t done = 0; done < n;) {
          const ssize_t w = ::pwrite(out.get(), buf.data() + done, n - done, pos - base + static_cast<off_t>(done));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) return fail();
          done += static_cast<std::size_t>(w);
        }
        pos += static_cast<off_t>(n);
      }
      at = hole;
    }
    if (::ftruncate(out.get(), static_cast<off_t>(size)) != 0) return fail();
    return Status::Ok();
  });
}

Status LocalObjectStore::PutBytes(const std::string& key, const std::string& data) const {
  auto path = PathOf(key);
  if (!path.ok()) return path.status();
  return WriteAtomically(*path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    return out ? Status::Ok() : Status::IoError("cannot write " + tmp.string());
  });
}

Status LocalObjectStore::Delete(const std::string& key) const {
  auto path = PathOf(key);
  if (!path.ok()) return path.status();
  HPO_RETURN_IF_ERROR(CommitGate::Check());
  std::error_code ec;
  fs::remove(*path, ec);
  if (ec) return Status::IoError("cannot remove " + *path + ": " + ec.message());
  // The directories the key leaves empty go too, up to (not including) the root.
  for (fs::path dir = fs::path(*path).parent_path(); dir.string().size() > root_.size();
       dir = dir.parent_path()) {
    if (!fs::is_empty(dir, ec) || ec || !fs::remove(dir, ec)) break;
  }
  return Status::Ok();
}

// ---- S3 ----------------------------------------------------------------------------------------

S3ObjectStore::S3ObjectStore(std::function<Result<const S3Client*>()> client, std::string bucket)
    : client_(std::move(client)), bucket_(std::move(bucket)) {}

std::string S3ObjectStore::Uri(const std::string& key) const { return "s3://" + bucket_ + "/" + key; }

Result<std::vector<ObjectInfo>> S3ObjectStore::List(const std::string& prefix) const {
  return WithClient([&](const S3Client* c) -> Result<std::vector<ObjectInfo>> {
    auto listed = c->List(bucket_, prefix);
    if (!listed.ok()) return listed.status();
    std::vector<ObjectInfo> out;
    out.reserve(listed->size());
    for (auto& o : *listed) {
      if (!o.key.empty() && o.key.back() == '/') continue;  // a "directory" marker
      out.push_back({std::move(o.key), o.size, std::move(o.etag)});
    }
    return out;
  });
}

Result<std::string> S3ObjectStore::Get(const std::string& key) const {
  return WithClient([&](const S3Client* c) { return c->Get(bucket_, key); });
}

Status S3ObjectStore::GetToFile(const std::string& key, const std::string& path) const {
  return WithClient([&](const S3Client* c) { return c->GetToFile(bucket_, key, path); });
}

Status S3ObjectStore::PutFile(const std::string& key, const std::string& path) const {
  HPO_RETURN_IF_ERROR(CommitGate::Check());
  return WithClient([&](const S3Client* c) { return c->PutFile(bucket_, key, path); });
}

Status S3ObjectStore::PutOpened(const std::string& key, int fd, uint64_t size, const std::string& name) const {
  // Read from its current offset: a retry of WithClient starts again where the file starts.
  const off_t start = ::lseek(fd, 0, SEEK_CUR);
  HPO_RETURN_IF_ERROR(CommitGate::Check());
  return WithClient([&](const S3Client* c) {
    if (start >= 0) (void)::lseek(fd, start, SEEK_SET);
    return c->PutOpened(bucket_, key, fd, size, name);
  });
}

Status S3ObjectStore::PutBytes(const std::string& key, const std::string& data) const {
  HPO_RETURN_IF_ERROR(CommitGate::Check());
  return WithClient([&](const S3Client* c) { return c->PutBytes(bucket_, key, data); });
}

Status S3ObjectStore::Delete(const std::string& key) const {
  HPO_RETURN_IF_ERROR(CommitGate::Check());
  return WithClient([&](const S3Client* c) { return c->Delete(bucket_, key); });
}

// ---- locations ---------------------------------------------------------------------------------

std::string ObjectLocation::Key(const std::string& rel) const {
  if (prefix.empty()) return rel;
  if (rel.empty()) return prefix;
  return prefix.back() == '/' ? prefix + rel : prefix + "/" + rel;
}

Result<ObjectLocation> OpenObjectLocation(const std::string& uri, std::function<Result<const S3Client*>()> s3) {
  ObjectLocation loc;
  if (uri.rfind("s3://", 0) == 0) {
    auto parsed = ParseS3Uri(uri);
    if (!parsed.ok()) return parsed.status();
    loc.store = std::make_shared<S3ObjectStore>(std::move(s3), parsed->bucket);
    loc.prefix = parsed->key;
    loc.bucket = parsed->bucket;
    return loc;
  }
  std::string path = uri.rfind("file://", 0) == 0 ? uri.substr(7) : uri;
  if (path.empty() || path[0] != '/') {
    return Status::InvalidArgument("\"" + uri + "\" is not an s3://bucket/prefix URI, a file:// URI or an absolute path");
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  loc.store = std::make_shared<LocalObjectStore>("/");
  loc.prefix = path == "/" ? "" : path.substr(1);
  return loc;
}

}  // namespace hpo
