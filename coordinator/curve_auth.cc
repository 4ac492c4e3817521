#include "coordinator/curve_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <zmq.h>

#include "common/file_util.h"
#include "common/text.h"

namespace hpo::coordinator::curve {

namespace fs = std::filesystem;

namespace {

std::string Unquote(std::string v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
  return v;
}

std::string Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Writes path durably with the given mode: temp file (created with that mode) + fsync + rename +
// directory fsync, so a reader sees the old or the new file, and a secret is never readable by
// others, not even for a moment.
Status WriteFileWithMode(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::IoError("cannot create " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IoError("cannot write " + tmp + ": " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::IoError("cannot finish " + tmp + ": " + std::strerror(e));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Status::IoError("cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
  std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

std::string KeyFileText(const std::string& name, const KeyPair& kp, bool secret) {
  std::string t;
  t += "#   hpo CurveZMQ " + std::string(secret ? "**secret** key pair" : "public key") + " of " + name + "\n";
  if (secret) {
    t += "#   SECRET: keep it on " + name + " only, readable by its user only (mode 0600).\n";
    t += "#   Whoever holds this file can act as " + name + ".\n";
  } else {
    t += "#   Public: safe to copy to every machine that talks to " + name + ".\n";
  }
  t += "#   Written by `hpo keygen` at " + Now() + ". Keys are Z85 text (czmq zcert layout).\n\n";
  t += "metadata\n    name = \"" + name + "\"\ncurve\n";
  t += "    public-key = \"" + kp.public_key + "\"\n";
  if (secret) t += "    secret-key = \"" + kp.secret_key + "\"\n";
  return t;
}

Status WriteKeyPair(const std::string& dir, const std::string& name, const KeyPair& kp) {
  HPO_RETURN_IF_ERROR(WriteFileWithMode(dir + "/" + name + ".secret", KeyFileText(name, kp, true), 0600));
  return WriteFileWithMode(dir + "/" + name + ".pub", KeyFileText(name, kp, false), 0644);
}

const char kAllowListHeader[] =
    "# hpo: workers allowed to connect to the coordinator (CurveZMQ public keys, Z85).\n"
    "# One `PUBLIC_KEY [NAME]` per line; a line starting with '#' is a comment. The coordinator re-reads it\n"
    "# when it changes and on SIGHUP. `hpo keygen --worker --out DIR` appends new workers; remove a\n"
    "# line to lock a worker out (it is refused at its next connection).\n";

bool ValidName(const std::string& n) {
  if (n.empty() || n == "." || n == ".." || n == "coordinator") return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace

Status CheckCurveAvailable() {
  if (zmq_has("curve")) return Status::Ok();
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return Status::FailedPrecondition("the linked libzmq " + std::to_string(major) + "." + std::to_string(minor) + "." +
                                    std::to_string(patch) +
                                    " was built without CURVE security (zmq_has(\"curve\") is false); install a "
                                    "libzmq built with libsodium (Debian's libzmq5 is), or run with --insecure");
}

bool IsZ85Key(const std::string& key) {
  if (key.size() != 40) return false;
  uint8_t raw[32];
  return zmq_z85_decode(raw, key.c_str()) != nullptr;
}

Result<KeyPair> GenerateKeyPair() {
  HPO_RETURN_IF_ERROR(CheckCurveAvailable());
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::Internal(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()));
  }
  return KeyPair{pub, sec};
}

Result<KeyPair> ReadKeyFile(const std::string& path, bool require_secret) {
  auto text = ReadFile(path, 1u << 16);
  if (!text.ok()) return Status::InvalidArgument("cannot read the key file: " + text.status().message());
  KeyPair kp;
  std::istringstream in(*text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string t(TrimSpace(line));
    if (t.empty() || t[0] == '#') continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string k(TrimSpace(t.substr(0, eq))), v = Unquote(std::string(TrimSpace(t.substr(eq + 1))));
    if (k != "public-key" && k != "secret-key") continue;
    if (!IsZ85Key(v)) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) + ": " + k +
                                     " is not a CurveZMQ key (40 characters of Z85 text)");
    }
    (k == "public-key" ? kp.public_key : kp.secret_key) = v;
  }
  if (kp.public_key.empty()) return Status::InvalidArgument(path + ": no public-key line (is this an hpo key file?)");
  if (require_secret) {
    if (kp.secret_key.empty()) {
      return Status::InvalidArgument(path + ": no secret-key line; this is a public key, the secret one is the "
                                            ".secret file written beside it by `hpo keygen`");
    }
    char derived[41];
    if (zmq_curve_public(derived, kp.secret_key.c_str()) != 0 || kp.public_key != derived) {
      return Status::InvalidArgument(path + ": the secret-key does not belong to the public-key in the same file");
    }
  }
  return kp;
}

Result<AllowList> ParseAllowList(const std::string& text, const std::string& source) {
  AllowList list;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string t(TrimSpace(line));
    if (t.empty() || t[0] == '#') continue;  // whole-line comments only: '#' is a Z85 character
    std::istringstream fields(t);
    std::string key, name, extra;
    fields >> key >> name >> extra;
    if (!extra.empty()) {
      return Status::InvalidArgument(source + ":" + std::to_string(n) +
                                     ": expected `PUBLIC_KEY [NAME]`, got more than two fields");
    }
    key = Unquote(key);
    if (!IsZ85Key(key)) {
      return Status::InvalidArgument(source + ":" + std::to_string(n) + ": '" + key +
                                     "' is not a CurveZMQ public key (40 characters of Z85 text)");
    }
    list[key] = name;
  }
  return list;
}

Result<AllowList> ReadAllowList(const std::string& path) {
  auto text = ReadFile(path, 16u << 20);
  if (!text.ok()) return Status::InvalidArgument("cannot read the worker allow-list: " + text.status().message());
  return ParseAllowList(*text, path);
}

Result<std::string> GenerateClusterKeys(const std::string& dir) {
  HPO_RETURN_IF_ERROR(CheckCurveAvailable());
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);
  } else if (!fs::is_directory(dir, ec)) {
    return Status::InvalidArgument(dir + " exists and is not a directory");
  }
  if (fs::exists(dir + "/" + kCoordinatorSecretFile, ec)) {
    return Status::AlreadyExists(dir + "/" + kCoordinatorSecretFile +
                                 " exists; refusing to replace the cluster's keys (every worker would be locked "
                                 "out). Add a worker with `hpo keygen --worker --out " + dir +
                                 "`, or remove the directory to start over");
  }
  auto coord = GenerateKeyPair();
  if (!coord.ok()) return coord.status();
  auto worker = GenerateKeyPair();
  if (!worker.ok()) return worker.status();
  HPO_RETURN_IF_ERROR(WriteKeyPair(dir, "coordinator", *coord));
  HPO_RETURN_IF_ERROR(WriteKeyPair(dir, kDefaultWorkerName, *worker));
  HPO_RETURN_IF_ERROR(WriteFileWithMode(dir + "/" + kAllowListFile,
                                        std::string(kAllowListHeader) + worker->public_key + " " + kDefaultWorkerName + "\n",
                                        0644));
  return "wrote " + dir + "/{coordinator.secret, coordinator.pub, worker.secret, worker.pub, authorized_workers}\n"
         "  coordinator:  hpo coordinator --keys " + dir + "\n"
         "  each worker:  copy coordinator.pub and worker.secret into a directory there, then\n"
         "                hpo worker --keys DIR --connect tcp://COORDINATOR:7700\n"
         "  more workers: hpo keygen --worker --out " + dir + "   (one key pair per machine)\n";
}

Result<std::string> AddWorkerKey(const std::string& dir, const std::string& name_in) {
  HPO_RETURN_IF_ERROR(CheckCurveAvailable());
  const std::string list_path = dir + "/" + kAllowListFile;
  std::error_code ec;
  if (!fs::exists(list_path, ec)) {
    return Status::InvalidArgument(list_path + " does not exist; create the cluster's keys first with `hpo keygen --out " +
                                   dir + "`");
  }
  auto text = ReadFile(list_path, 16u << 20);
  if (!text.ok()) return text.status();
  auto parsed = ParseAllowList(*text, list_path);
  if (!parsed.ok()) return parsed.status();
  std::string name = name_in;
  if (name.empty()) {
    for (int i = 2;; ++i) {
      name = "worker-" + std::to_string(i);
      if (!fs::exists(dir + "/" + name + ".secret", ec)) break;
    }
  } else if (!ValidName(name)) {
    return Status::InvalidArgument("--name '" + name + "' must be letters, digits, '.', '_' or '-' (and not 'coordinator')");
  }
  if (fs::exists(dir + "/" + name + ".secret", ec)) {
    return Status::AlreadyExists(dir + "/" + name + ".secret exists; choose another --name");
  }
  auto kp = GenerateKeyPair();
  if (!kp.ok()) return kp.status();
  HPO_RETURN_IF_ERROR(WriteKeyPair(dir, name, *kp));
  std::string updated = *text;
  if (!updated.empty() && updated.back() != '\n') updated += '\n';
  updated += kp->public_key + " " + name + "\n";
  HPO_RETURN_IF_ERROR(WriteFileWithMode(list_path, updated, 0644));
  return "wrote " + dir + "/" + name + ".secret and " + name + ".pub, and allowed the key in " + list_path +
         " (a running coordinator using this directory picks it up; otherwise copy authorized_workers to it and "
         "send it SIGHUP)\n  on the new worker: copy coordinator.pub and " + name +
         ".secret into a directory there, then\n  hpo worker --keys DIR --key-name " + name +
         " --connect tcp://COORDINATOR:7700\n";
}

// ---- the ZAP handler -------------------------------------------------------------------------------

struct ZapHandler::State {
  void* ctx = nullptr;
  void* rep = nullptr;
  std::string path;
  std::function<void(const std::string&)> log;
  AllowList list;  // touched by the handler thread only
  struct stat seen {};
  bool have_seen = false;
  std::map<std::string, std::chrono::steady_clock::time_point> last_refusal_log;
  std::thread thread;
};

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(void* zmq_context, std::string allow_list_path,
                                                      std::function<void(const std::string&)> log) {
  HPO_RETURN_IF_ERROR(CheckCurveAvailable());
  auto list = ReadAllowList(allow_list_path);
  if (!list.ok()) return list.status();
  std::unique_ptr<ZapHandler> h(new ZapHandler());
  h->state_ = std::make_unique<State>();
  State& s = *h->state_;
  s.ctx = zmq_context;
  s.path = std::move(allow_list_path);
  s.log = log ? std::move(log) : [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
  s.list = std::move(list).value();
  s.have_seen = ::stat(s.path.c_str(), &s.seen) == 0;
  h->allowed_ = s.list.size();
  h->PublishKeys();
  s.rep = zmq_socket(zmq_context, ZMQ_REP);
  if (!s.rep) return Status::Internal(std::string("cannot create the ZAP socket: ") + zmq_strerror(zmq_errno()));
  int linger = 0;
  zmq_setsockopt(s.rep, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_bind(s.rep, kZapEndpoint) != 0) {
    std::string why = zmq_strerror(zmq_errno());
    zmq_close(s.rep);
    s.rep = nullptr;
    return Status::FailedPrecondition(std::string("cannot bind the ZAP handler to ") + kZapEndpoint + ": " + why);
  }
  if (s.list.empty()) {
    s.log("coordinator: the worker allow-list " + s.path + " is empty; no worker can connect until keys are added");
  }
  ZapHandler* self = h.get();
  s.thread = std::thread([self] { self->Loop(); });
  return h;
}

ZapHandler::~ZapHandler() {
  if (!state_) return;
  stop_ = true;
  if (state_->thread.joinable()) state_->thread.join();
}

void ZapHandler::RequestReload() { reload_ = true; }

void ZapHandler::PublishKeys() {
  auto keys = std::make_shared<std::set<std::string>>();
  for (const auto& [key, name] : state_->list) keys->insert(key);
  std::lock_guard<std::mutex> lock(keys_mu_);
  keys_ = std::move(keys);
}

bool ZapHandler::Allows(const std::string& z85_key) const {
  std::shared_ptr<const std::set<std::string>> keys;
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    keys = keys_;
  }
  return keys && keys->count(z85_key) > 0;
}

void ZapHandler::Loop() {
  State& s = *state_;
  auto reload = [&](bool forced) {
    struct stat st {};
    bool exists = ::stat(s.path.c_str(), &st) == 0;
    bool changed = exists != s.have_seen ||
                   (exists && (st.st_ino != s.seen.st_ino || st.st_size != s.seen.st_size ||
                               st.st_mtim.tv_sec != s.seen.st_mtim.tv_sec || st.st_mtim.tv_nsec != s.seen.st_mtim.tv_nsec));
    if (!forced && !changed) return;
    s.have_seen = exists;
    if (exists) s.seen = st;
    auto list = ReadAllowList(s.path);
    if (!list.ok()) {
      s.log("coordinator: keeping the previous worker allow-list (" + std::to_string(s.list.size()) +
            " keys): " + list.status().message());
      return;
    }
    s.list = std::move(list).value();
    allowed_ = s.list.size();
    PublishKeys();
    ++reloads_;
    s.log("coordinator: worker allow-list " + s.path + " reloaded" + (forced ? " (SIGHUP)" : " (file changed)") + ": " +
          std::to_string(s.list.size()) + " key" + (s.list.size() == 1 ? "" : "s"));
  };
  auto last_check = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    if (reload_.exchange(false)) reload(true);
    zmq_pollitem_t item{s.rep, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&item, 1, 200);
    auto now = std::chrono::steady_clock::now();
    if (now - last_check > std::chrono::seconds(1)) {
      last_check = now;
      reload(false);
    }
    if (rc <= 0 || !(item.revents & ZMQ_POLLIN)) continue;

    // A request: version, request id, domain, address, identity, mechanism, credentials...
    std::vector<std::string> frames;
    for (;;) {
      zmq_msg_t m;
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, s.rep, 0) < 0) {
        zmq_msg_close(&m);
        break;
      }
      frames.emplace_back(static_cast<const char*>(zmq_msg_data(&m)), zmq_msg_size(&m));
      int more = zmq_msg_more(&m);
      zmq_msg_close(&m);
      if (!more) break;
    }
    reload(false);  // a changed file counts from the very next handshake
    last_check = std::chrono::steady_clock::now();
    std::string status = "400", text, user;
    const std::string request_id = frames.size() > 1 ? frames[1] : "";
    const std::string address = frames.size() > 3 ? frames[3] : "?";
    if (frames.size() < 6 || frames[0] != "1.0") {
      status = "500";
      text = "malformed ZAP request";
      s.log("coordinator: internal error: a malformed ZAP request (" + std::to_string(frames.size()) + " frames)");
    } else if (frames[5] != "CURVE" || frames.size() < 7 || frames[6].size() != 32) {
      text = "only CURVE clients are accepted";
      ++refused_;
      s.log("coordinator: refused a worker from " + address + ": it did not use CurveZMQ (mechanism " + frames[5] + ")");
    } else {
      char z85[41];
      zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(frames[6].data()), 32);
      auto it = s.list.find(z85);
      if (it != s.list.end()) {
        status = "200";
        text = "OK";
        user = z85;  // the connection's User-Id: the dispatcher checks it against later reloads (Allows)
        ++accepted_;
      } else {
        text = "public key not in the allow-list";
        ++refused_;
        auto& last = s.last_refusal_log[z85];
        auto t = std::chrono::steady_clock::now();
        if (last.time_since_epoch().count() == 0 || t - last > std::chrono::minutes(1)) {
          last = t;
          s.log("coordinator: refused a worker from " + address + ": its public key " + z85 + " is not in " + s.path +
                " (add it there, e.g. with `hpo keygen --worker`; the file is re-read when it changes)");
        }
      }
    }
    const std::string reply[] = {"1.0", request_id, status, text, user, ""};
    for (size_t i = 0; i < 6; ++i) {
      zmq_send(s.rep, reply[i].data(), reply[i].size(), i + 1 < 6 ? ZMQ_SNDMORE : 0);
    }
  }
  zmq_close(s.rep);
  s.rep = nullptr;
}

}  // namespace hpo::coordinator::curve
