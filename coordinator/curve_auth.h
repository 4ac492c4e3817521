// coordinator/curve_auth.h: who may connect to the coordinator's ZeroMQ socket.
//
// CurveZMQ (RFC 26) encrypts the coordinator<->worker traffic and authenticates both ends by
// their Curve25519 key pairs. The coordinator's ROUTER socket is a CURVE server; every worker
// is a CURVE client that knows the coordinator's public key. Which workers are let in is decided
// by a ZAP handler (RFC 27, ZAP 1.0) in this process: it accepts a worker only when the worker's
// public key is in the allow-list file.
//
// The key directory (`hpo keygen --out DIR`; every key is Z85 text, 40 characters, in czmq's
// zcert layout, so czmq tools read the files too):
//   coordinator.secret   the coordinator's key pair            (mode 0600; coordinator only)
//   coordinator.pub      the coordinator's public key          (every worker needs it)
//   worker.secret        the first worker's key pair           (mode 0600; that worker only)
//   worker.pub           its public key
//   authorized_workers   the allow-list: one `PUBLIC_KEY [NAME]` per line; a line starting with
//                        '#' is a comment ('#' is also a Z85 character, so never after a key)
// `hpo keygen --worker --out DIR [--name NAME]` adds NAME.secret/NAME.pub (NAME defaults to
// worker-2, worker-3, ...) and appends the public key to authorized_workers.
//
// Errors are values: a missing or malformed file is InvalidArgument naming the file (and the
// line); a libzmq built without CURVE is FailedPrecondition saying so.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/status.h"

namespace hpo::coordinator::curve {

inline constexpr char kCoordinatorSecretFile[] = "coordinator.secret";
inline constexpr char kCoordinatorPublicFile[] = "coordinator.pub";
inline constexpr char kAllowListFile[] = "authorized_workers";
inline constexpr char kDefaultWorkerName[] = "worker";
// The well-known endpoint libzmq sends ZAP requests to (RFC 27).
inline constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";

// OK when the linked libzmq supports CURVE (zmq_has("curve")); else FailedPrecondition.
Status CheckCurveAvailable();

struct KeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; "" for a public-only file
};

// A fresh key pair (zmq_curve_keypair).
Result<KeyPair> GenerateKeyPair();
// True when `key` is 40 characters of Z85 that decode to 32 bytes.
bool IsZ85Key(const std::string& key);

// Reads a key file: `public-key = "..."` and `secret-key = "..."` lines (quotes optional),
// anything else ignored. With require_secret, the secret key must be there and must belong to
// the public key. Errors name the file.
Result<KeyPair> ReadKeyFile(const std::string& path, bool require_secret);

// The allow-list: public key (Z85) -> name ("" when the line gives none). Errors name the file
// and line of the first bad entry. An empty list is valid (it admits nobody).
using AllowList = std::map<std::string, std::string>;
Result<AllowList> ParseAllowList(const std::string& text, const std::string& source_name);
Result<AllowList> ReadAllowList(const std::string& path);

// `hpo keygen`: writes the files listed above into dir (created with mode 0700 if missing).
// Refuses to overwrite an existing coordinator.secret. Returns a description of what it wrote.
Result<std::string> GenerateClusterKeys(const std::string& dir);
// `hpo keygen --worker`: adds NAME.secret and NAME.pub (name "" = the first free worker-N) and
// appends the public key to authorized_workers (rewritten atomically, so a running coordinator
// sees the change). Errors: no authorized_workers in dir (run GenerateClusterKeys first), a name
// that is not [A-Za-z0-9._-]+, or a NAME.secret that exists.
Result<std::string> AddWorkerKey(const std::string& dir, const std::string& name);

// The ZAP handler: a REP socket bound to inproc://zeromq.zap.01 in the given ZeroMQ context,
// served by its own thread. It answers every request with 200 when the mechanism is CURVE and
// the client's public key is in the allow-list, and 400 otherwise, logging each refusal (at
// most once a minute per key) with the peer address and key. The allow-list file is re-read
// when its size, modification time or inode changes (checked before each request and every
// second) and on RequestReload() (SIGHUP); a file that no longer parses keeps the previous
// list and logs why.
//
// Lifetime: create it before binding the CURVE server socket and destroy it before the context
// (the destructor stops and joins the thread). Thread-safe: RequestReload and the counters may be
// called from any thread.
class ZapHandler {
 public:
  // zmq_context: the raw context handle (zmq::context_t::handle()). Errors: the allow-list does
  // not load; the ZAP endpoint is taken (another handler in this context).
  static Result<std::unique_ptr<ZapHandler>> Start(void* zmq_context, std::string allow_list_path,
                                                   std::function<void(const std::string&)> log);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  void RequestReload();
  // Whether `z85_key` (a connection's ZMQ "User-Id", which this handler sets to the client's
  // public key) is in the allow-list as last loaded: a key removed from the file is refused at
  // its next handshake by the handler, and by the dispatcher for every message of a connection
  // made before the removal. Thread-safe.
  bool Allows(const std::string& z85_key) const;
  size_t allowed() const { return allowed_.load(); }    // keys in the list now
  uint64_t accepted() const { return accepted_.load(); }  // handshakes let in
  uint64_t refused() const { return refused_.load(); }    // handshakes refused
  uint64_t reloads() const { return reloads_.load(); }    // successful re-reads since Start

 private:
  ZapHandler() = default;
  void Loop();
  struct State;
  std::unique_ptr<State> state_;
  std::atomic<bool> stop_{false}, reload_{false};
  std::atomic<size_t> allowed_{0};
  std::atomic<uint64_t> accepted_{0}, refused_{0}, reloads_{0};
  mutable std::mutex keys_mu_;
  std::shared_ptr<const std::set<std::string>> keys_;  // the list's keys, for Allows
  void PublishKeys();
};

}  // namespace hpo::coordinator::curve
