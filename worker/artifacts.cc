#include "worker/artifacts.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

namespace hpo::worker {

namespace fs = std::filesystem;

namespace {

// Sink for archive bytes: a gzip stream or a plain file.
class Sink {
 public:
  static Result<Sink> Open(const std::string& path, bool gzip) {
    Sink s;
    s.gzip_ = gzip;
    if (gzip) {
      s.gz_ = ::gzopen(path.c_str(), "wb6");
      if (s.gz_ == nullptr) return Status::IoError("cannot write " + path + ": " + std::strerror(errno));
    } else {
      s.f_ = std::fopen(path.c_str(), "wb");
      if (s.f_ == nullptr) return Status::IoError("cannot write " + path + ": " + std::strerror(errno));
    }
    return s;
  }
  Sink() = default;
  Sink(Sink&& o) noexcept : gzip_(o.gzip_), gz_(std::exchange(o.gz_, nullptr)), f_(std::exchange(o.f_, nullptr)) {}
  ~Sink() { (void)Close(); }
  bool Write(const char* p, std::size_t n) {
    if (n == 0) return true;
    if (gzip_) return ::gzwrite(gz_, p, static_cast<unsigned>(n)) == static_cast<int>(n);
    return std::fwrite(p, 1, n, f_) == n;
  }
  bool Close() {
    bool ok = true;
    if (gz_ != nullptr) ok = ::gzclose(gz_) == Z_OK;
    if (f_ != nullptr) ok = std::fclose(f_) == 0;
    gz_ = nullptr;
    f_ = nullptr;
    return ok;
  }

 private:
  bool gzip_ = false;
  gzFile gz_ = nullptr;
  std::FILE* f_ = nullptr;
};

void Octal(char* field, std::size_t width, uint64_t value) {
  // width-1 octal digits, zero-padded, and a NUL (values too large keep their low digits).
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

std::string Header(const std::string& name, char type, uint64_t size, uint32_t mode, int64_t mtime,
                   const std::string& link, bool gnu) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<std::size_t>(name.size(), 100));
  Octal(&h[100], 8, mode & 07777);
  Octal(&h[108], 8, 0);
  Octal(&h[116], 8, 0);
  Octal(&h[124], 12, size);
  Octal(&h[136], 12, static_cast<uint64_t>(std::max<int64_t>(0, mtime)));
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

Status WriteEntry(Sink& sink, const fs::path& path, const std::string& name, const std::string& out_path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::IoError("cannot read " + path.string() + ": " + std::strerror(errno));
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
    if (link.size() > 100) return Status::IoError("the link target of " + path.string() + " is longer than 100 bytes");
  } else if (S_ISREG(st.st_mode)) {
    type = '0';
    size = static_cast<uint64_t>(st.st_size);
  } else {
    return Status::Ok();  // sockets, FIFOs and devices are not artifacts
  }
  auto fail = [&] { return Status::IoError("cannot write " + out_path + ": " + std::strerror(errno)); };
  if (member.size() > 100) {
    std::string longname = member + '\0';
    std::string lh = Header("././@LongLink", 'L', longname.size(), 0644, 0, "", true);
    if (!sink.Write(lh.data(), lh.size()) || !sink.Write(longname.data(), longname.size()) ||
        !Pad(sink, longname.size())) {
      return fail();
    }
  }
  std::string h = Header(member, type, size, st.st_mode, st.st_mtime, link, member.size() > 100);
  if (!sink.Write(h.data(), h.size())) return fail();
  if (type != '0') return Status::Ok();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read " + path.string());
  std::vector<char> buf(1 << 20);
  uint64_t left = size;
  while (left > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(left, buf.size()));
    if (!in.read(buf.data(), static_cast<std::streamsize>(n))) {
      return Status::IoError("cannot read " + path.string() + " (did it shrink while being packed?)");
    }
    if (!sink.Write(buf.data(), n)) return fail();
    left -= n;
  }
  if (!Pad(sink, size)) return fail();
  return Status::Ok();
}

Status Walk(Sink& sink, const fs::path& dir, const std::string& prefix, const std::string& out_path) {
  std::vector<fs::path> children;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) children.push_back(it->path());
  if (ec) return Status::IoError("cannot list " + dir.string() + ": " + ec.message());
  std::sort(children.begin(), children.end());
  for (const auto& c : children) {
    std::string name = prefix + c.filename().string();
    HPO_RETURN_IF_ERROR(WriteEntry(sink, c, name, out_path));
    if (fs::is_directory(fs::symlink_status(c))) HPO_RETURN_IF_ERROR(Walk(sink, c, name + "/", out_path));
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
  Status s = Walk(*sink, dir, "", out_path);
  if (s.ok()) {
    static const char zeros[1024] = {0};
    if (!sink->Write(zeros, sizeof zeros)) s = Status::IoError("cannot write " + out_path);
  }
  if (!sink->Close() && s.ok()) s = Status::IoError("cannot write " + out_path + ": " + std::strerror(errno));
  if (!s.ok()) fs::remove(out_path, ec);
  return s;
}

Result<UploadedArtifacts> UploadArtifacts(const ArtifactSpec& spec, const std::function<Result<const S3Client*>()>& s3) {
  if (spec.output_path.empty()) return Status::InvalidArgument("the S3OutputPath is empty");
  const std::string ext = spec.compress ? ".tar.gz" : ".tar";
  const std::string rel = spec.job_name + "/output/";
  UploadedArtifacts out;
  struct One {
    std::string dir, name;
    std::string* uri;
  };
  for (const One& one : {One{(fs::path(spec.root) / "model").string(), "model" + ext, &out.model},
                         One{(fs::path(spec.root) / "output" / "data").string(), "output" + ext, &out.output_data}}) {
    std::error_code ec;
    fs::create_directories(one.dir, ec);  // a program that removed it still gets an (empty) archive
    const std::string archive = (fs::path(spec.scratch_dir) / one.name).string();
    HPO_RETURN_IF_ERROR(WriteTar(one.dir, archive, spec.compress));
    const std::string dest = JoinUri(spec.output_path, rel + one.name);
    if (spec.output_path.rfind("s3://", 0) == 0) {
      auto uri = ParseS3Uri(dest);
      if (!uri.ok()) return uri.status();
      auto client = s3();
      if (!client.ok()) return client.status();
      HPO_RETURN_IF_ERROR((*client)->PutFile(uri->bucket, uri->key, archive));
    } else {
      std::string path = spec.output_path.rfind("file://", 0) == 0 ? dest.substr(7) : dest;
      if (path.empty() || path[0] != '/') {
        return Status::InvalidArgument("the S3OutputPath \"" + spec.output_path +
                                       "\" is not s3://, file:// or an absolute path");
      }
      fs::create_directories(fs::path(path).parent_path(), ec);
      if (ec) return Status::IoError("cannot create " + fs::path(path).parent_path().string() + ": " + ec.message());
      const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
      fs::copy_file(archive, tmp, fs::copy_options::overwrite_existing, ec);
      if (!ec) fs::rename(tmp, path, ec);
      if (ec) {
        const std::string why = ec.message();
        fs::remove(tmp, ec);
        return Status::IoError("cannot write " + path + ": " + why);
      }
    }
    fs::remove(archive, ec);
    *one.uri = dest;
  }
  return out;
}

}  // namespace hpo::worker
