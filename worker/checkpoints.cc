#include "worker/checkpoints.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <system_error>

namespace hpo::worker {
namespace fs = std::filesystem;

namespace {

// A relative path that stays inside its directory: no absolute path, no "." or ".." component,
// no empty component.
bool Contained(const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    const std::string part = rel.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

// Copies `from` to `to` through a temporary name beside it, so `to` is never half written.
Status CopyAtomically(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec) return Status::IoError("cannot create " + to.parent_path().string() + ": " + ec.message());
  const fs::path tmp = to.parent_path() / (".hpo-tmp-" + to.filename().string() + "-" + std::to_string(::getpid()));
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IoError("cannot copy " + from.string() + " to " + tmp.string() + ": " + ec.message());
  fs::rename(tmp, to, ec);
  if (ec) {
    fs::remove(tmp);
    return Status::IoError("cannot rename " + tmp.string() + " to " + to.string() + ": " + ec.message());
  }
  return Status::Ok();
}

// Regular files under `dir`, by path relative to it (temporary copies of ours left out).
Result<std::map<std::string, fs::path>> Files(const fs::path& dir) {
  std::map<std::string, fs::path> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) return Status::IoError("cannot list " + dir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::IoError("cannot list " + dir.string() + ": " + ec.message());
    std::error_code sec;
    if (!it->is_regular_file(sec) || it->is_symlink(sec)) continue;
    const std::string rel = fs::relative(it->path(), dir, sec).generic_string();
    if (sec || rel.find("/.hpo-tmp-") != std::string::npos || rel.rfind(".hpo-tmp-", 0) == 0) continue;
    out[rel] = it->path();
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<CheckpointSync>> CheckpointSync::Create(const std::string& uri, const std::string& local_dir,
                                                               std::function<Result<const S3Client*>()> s3) {
  std::unique_ptr<CheckpointSync> c(new CheckpointSync());
  c->uri_ = uri;
  c->local_dir_ = local_dir;
  c->s3_ = std::move(s3);
  if (uri.rfind("s3://", 0) == 0) {
    auto parsed = ParseS3Uri(uri);
    if (!parsed.ok()) return Status::InvalidArgument("CheckpointConfig.S3Uri " + uri + ": " + parsed.status().message());
    c->s3_dest_ = true;
    c->s3_uri_ = *parsed;
    if (!c->s3_uri_.key.empty() && c->s3_uri_.key.back() != '/') c->s3_uri_.key += '/';
  } else if (uri.rfind("file://", 0) == 0 && uri.size() > 7 && uri[7] == '/') {
    c->local_dest_ = uri.substr(7);
  } else if (!uri.empty() && uri[0] == '/') {
    c->local_dest_ = uri;
  } else {
    return Status::InvalidArgument("CheckpointConfig.S3Uri " + uri +
                                   " is not an s3://bucket/prefix URI, a file:// URI or an absolute path");
  }
  return c;
}

Status CheckpointSync::Put(const std::string& rel, const std::string& path) const {
  if (!s3_dest_) return CopyAtomically(path, fs::path(local_dest_) / rel);
  auto client = s3_();
  if (!client.ok()) return client.status();
  return (*client)->PutFile(s3_uri_.bucket, s3_uri_.key + rel, path);
}

Status CheckpointSync::Remove(const std::string& rel) const {
  if (!s3_dest_) {
    std::error_code ec;
    fs::remove(fs::path(local_dest_) / rel, ec);
    if (ec) return Status::IoError("cannot remove " + (fs::path(local_dest_) / rel).string() + ": " + ec.message());
    return Status::Ok();
  }
  auto client = s3_();
  if (!client.ok()) return client.status();
  return (*client)->Delete(s3_uri_.bucket, s3_uri_.key + rel);
}

Result<CheckpointStats> CheckpointSync::Restore() {
  std::lock_guard<std::mutex> lock(mu_);
  CheckpointStats st;
  std::error_code ec;
  // Empty the directory, keeping the directory itself (it may be a mount point).
  fs::create_directories(local_dir_, ec);
  if (ec) return Status::IoError("cannot create " + local_dir_ + ": " + ec.message());
  for (const auto& e : fs::directory_iterator(local_dir_, ec)) {
    std::error_code rec;
    fs::remove_all(e.path(), rec);
    if (rec) return Status::IoError("cannot empty " + local_dir_ + ": " + rec.message());
  }
  if (ec) return Status::IoError("cannot list " + local_dir_ + ": " + ec.message());
  synced_.clear();
  std::vector<std::pair<std::string, std::function<Status(const fs::path&)>>> todo;
  if (s3_dest_) {
    auto client = s3_();
    if (!client.ok()) return client.status();
    auto objects = (*client)->List(s3_uri_.bucket, s3_uri_.key);
    if (!objects.ok()) return objects.status();
    for (const S3Object& o : *objects) {
      std::string rel = o.key.substr(s3_uri_.key.size());
      if (rel.empty() || rel.back() == '/') continue;  // a "directory" marker
      if (!Contained(rel)) {
        return Status::InvalidArgument("ClientError: checkpoint object s3://" + s3_uri_.bucket + "/" + o.key +
                                       " would be written outside the checkpoint directory");
      }
      const S3Client* c = *client;
      const std::string bucket = s3_uri_.bucket, key = o.key;
      todo.push_back({rel, [c, bucket, key](const fs::path& to) { return c->GetToFile(bucket, key, to.string()); }});
      st.bytes += o.size;
    }
  } else {
    auto files = Files(local_dest_);
    if (!files.ok()) return files.status();
    for (const auto& [rel, path] : *files) {
      const fs::path from = path;
      todo.push_back({rel, [from](const fs::path& to) {
                        std::error_code cec;
                        fs::copy_file(from, to, fs::copy_options::overwrite_existing, cec);
                        return cec ? Status::IoError("cannot copy " + from.string() + ": " + cec.message())
                                   : Status::Ok();
                      }});
      std::error_code sec;
      st.bytes += fs::file_size(path, sec);
    }
  }
  for (const auto& [rel, fetch] : todo) {
    const fs::path to = fs::path(local_dir_) / rel;
    fs::create_directories(to.parent_path(), ec);
    if (ec) return Status::IoError("cannot create " + to.parent_path().string() + ": " + ec.message());
    HPO_RETURN_IF_ERROR(fetch(to));
    struct stat sb{};
    if (::stat(to.c_str(), &sb) == 0) {
      synced_[rel] = {static_cast<uint64_t>(sb.st_size), int64_t{sb.st_mtim.tv_sec} * 1000000000 + sb.st_mtim.tv_nsec};
    }
    ++st.files;
  }
  return st;
}

Result<CheckpointStats> CheckpointSync::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  CheckpointStats st;
  auto files = Files(local_dir_);
  if (!files.ok()) return files.status();
  Status first = Status::Ok();
  for (const auto& [rel, path] : *files) {
    struct stat sb{};
    if (::stat(path.c_str(), &sb) != 0) continue;  // gone since the listing: the next pass deletes it
    const FileState now{static_cast<uint64_t>(sb.st_size), int64_t{sb.st_mtim.tv_sec} * 1000000000 + sb.st_mtim.tv_nsec};
    auto it = synced_.find(rel);
    if (it != synced_.end() && it->second == now) continue;
    Status put = Put(rel, path.string());
    if (!put.ok()) {
      if (first.ok()) first = put;
      synced_.erase(rel);
      continue;
    }
    synced_[rel] = now;
    ++st.files;
    st.bytes += now.size;
  }
  for (auto it = synced_.begin(); it != synced_.end();) {
    if (files->count(it->first)) {
      ++it;
      continue;
    }
    Status rm = Remove(it->first);
    if (!rm.ok()) {
      if (first.ok()) first = rm;
      ++it;
      continue;
    }
    ++st.deleted;
    it = synced_.erase(it);
  }
  if (!first.ok()) return first;
  return st;
}

}  // namespace hpo::worker
