// coordinator/dispatcher.h: the ZeroMQ adapter of the coordinator core.
//
// A ROUTER socket; each worker connects a DEALER whose routing id is its worker id. Incoming
// frames [id, type, body] are decoded (proto/messages.h) and handed to the core with the current
// time; the core's Outgoing messages are encoded and sent. A frame that does not decode is logged
// and answered with an Error message; the dispatcher keeps serving. Every tick_ms the core's
// OnTick runs (leases, scheduling) with the time the socket was last drained, so time the loop
// spent inside the core never counts against a worker's lease.
//
// Threads: Run() is the dispatcher's own loop and the only user of the socket. Other threads
// (the HTTP API, `hpo run`'s progress display) reach the core through WithCore(), which holds
// the core's mutex, and any Outgoing messages they produce are queued with Post() and sent by the
// loop within one poll interval. Run() also starts proposer threads (proposer_threads): the
// core's proposal requests (CoreOptions::propose_off_core) are taken from it whenever the core
// was used, run there without the core's mutex, in the order they came, as many at once as there
// are proposer threads (each job has at most one request out, and each job's strategy its own
// GP engine), and handed back to the core by the loop, so a Bayesian proposal of several seconds
// delays only its own job's next trials, and with two threads a small job's proposal does not
// wait behind a large one's. Run() returns once the proposals in progress have finished.
//
// Durability: with a deferred store (DispatcherOptions::deferred_store) the core's commits only
// write SQLite's log, and the dispatcher waits for the disk (one fdatasync per batch, shared
// with any API call writing at the same time) after releasing the core's mutex and before the
// replies leave; so an API call never queues behind an fsync held under that mutex (on a slow
// disk that was most of a describe's time).
//
// Security (coordinator/curve_auth.h): with curve_secret_key set, the ROUTER is a CurveZMQ server:
// traffic is encrypted, and a ZAP handler in this process admits only workers whose public keys
// are in the allow-list file; a refused worker never reaches the core (libzmq drops the
// connection during the handshake) and is logged, and everyone else keeps being served. Without
// it the socket is plain ZeroMQ (`hpo run`, loopback-only or --insecure coordinators).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/core.h"

namespace hpo::coordinator {

// The worker id of a connection's ZeroMQ routing id: "<worker id>/<session>" as workers connect
// (worker/agent.cc), or a routing id without '/' (a worker id cannot contain one) as it is.
std::string WorkerIdOf(const std::string& routing);

struct DispatcherOptions {
  std::string listen = "tcp://127.0.0.1:7700";  // ZeroMQ endpoint; "tcp://127.0.0.1:*" picks a port
  int64_t tick_ms = 200;                        // how often the core's OnTick runs
  int64_t poll_ms = 5;                          // how long the loop waits for a message
  std::function<int64_t()> now_ms;              // the clock; defaults to SystemNowMs (common/clock.h)
  std::function<void(const std::string&)> log;  // one line per noteworthy event; default stderr
  std::string curve_secret_key;  // Z85 secret key of the coordinator; "" = no CurveZMQ
  std::string curve_allow_list;  // allow-list file of worker public keys; required with the key
  int64_t handshake_ms = 5000;   // a connection that has not finished its handshake by then is dropped
  // Runs on the loop after each batch of messages has been handled by the core (tests: a slow
  // core). Empty: nothing.
  std::function<void()> after_batch;
  // At most this many bytes of messages go to the core in one batch (with at most 1000
  // messages): a worker flooding large messages (4 MiB each, the most one may be) made one batch
  // of gigabytes, and the loop's ticks and every other worker waited for it. The rest waits for
  // the next round, which ZeroMQ's fair queueing shares between the connections.
  size_t burst_bytes = size_t{16} << 20;  // 0: no bound but the 1000 messages
  // Proposals of different tuning jobs made at once (>= 1; 0 counts as 1). Each uses the GP
  // engine's own threads (the CPU engine: every core), so more threads share the cores between
  // jobs rather than adding any; what they buy is that a large job's proposal (seconds) does not
  // hold up a small job's (milliseconds).
  int proposer_threads = 2;
  // Runs on a proposer thread before each proposal, with the request's job name (tests: a slow
  // strategy). Empty: nothing.
  std::function<void(const std::string& job)> before_proposal;
  // The core's store, when it was opened with Durability::kDeferred (`hpo coordinator`, `hpo
  // run`): its commits do not wait for the disk, and the dispatcher makes what a use of the core
  // wrote durable after releasing the core's mutex and before anything that depends on it
  // leaves: the loop's replies and assignments, and WithCore's return (an API call's answer).
  // So nobody waits for an fsync while holding the core, and a sync serves every commit made
  // before it (group commit). Uses that write nothing do not wait: a reader sees what the core
  // has applied, which a crash of the process cannot lose (the log is written) and a power
  // failure can only in the moments before its sync; nothing is acknowledged to a worker or an
  // API caller before it is on disk. Null: each commit is durable when it returns.
  SqliteJobStore* deferred_store = nullptr;
  // Called once when such a sync fails; from then on the loop sends none of the core's replies
  // (what they acknowledge may not be on disk). `hpo coordinator` and `hpo run` exit as on a
  // refused write (CoreOptions::on_store_failure). Empty: logged only.
  std::function<void(const Status&)> on_sync_failure;
};

class Dispatcher {
 public:
  Dispatcher(CoordinatorCore* core, DispatcherOptions options);
  ~Dispatcher();

  // Binds the socket (first starting the ZAP handler when CurveZMQ is on). Errors: the endpoint
  // is malformed or in use; with CurveZMQ: libzmq lacks CURVE, the key is not Z85, the allow-list
  // does not load.
  Status Bind();
  // True when the socket is a CurveZMQ server.
  bool secure() const;
  // Re-reads the allow-list before the next handshake (for SIGHUP); no-op without CurveZMQ.
  // Thread-safe.
  void ReloadAllowList();
  // The endpoint actually bound (with the port chosen for "*").
  std::string endpoint() const;
  // Serves until `stop` becomes true. Meanwhile a thread of its own finishes the deletions a
  // stopped coordinator left part-way (CoordinatorCore::TakeInterruptedDeletions), logging each.
  void Run(const std::atomic<bool>& stop);

  // Runs f with the core locked; proposal requests it made go to the proposer thread. If f wrote
  // to a deferred store (DispatcherOptions::deferred_store), returns once that is on disk, having
  // released the core first.
  template <class F>
  auto WithCore(F&& f) {
    DurableOnExit durable{this};  // last out: waits for the disk without the lock
    std::lock_guard<std::mutex> lock(core_mu_);
    durable.before = WriteMark();
    const HandOverOnExit hand_over{this, &durable};  // runs before the lock is released
    return f(*core_);
  }
  // Deletes a tuning job as DeleteHyperParameterTuningJob asks: CoordinatorCore::DeleteSlice calls,
  // letting go of the core for a moment between them (workers' messages and other calls go on),
  // then CoordinatorCore::Delete. Errors: theirs; a job it found that another caller (Run's
  // finishing of an interrupted deletion) deleted meanwhile counts as deleted. With `stop`, it
  // gives up between slices once that is true, as it does once BeginShutdown was called
  // (Unavailable; the job stays Deleting, and the next start goes on). Thread-safe.
  Status DeleteTuningJob(const std::string& name, const std::atomic<bool>* stop = nullptr);
  // The process is stopping: deletions in progress (DeleteTuningJob) give up at their next
  // slice, so that an API call deleting a large job does not hold the shutdown for its whole
  // length. Call before stopping the HTTP API, whose requests wait for them. Thread-safe.
  void BeginShutdown() { shutting_down_ = true; }
  // Queues messages for sending by the loop (thread-safe).
  void Post(std::vector<Outgoing> out);
  // DispatcherOptions::deferred_store (its sync counters are thread-safe); null without one.
  const SqliteJobStore* deferred_store() const { return options_.deferred_store; }
  int64_t Now() const { return options_.now_ms(); }

  // Counters for progress and metrics pages.
  uint64_t messages_in() const { return messages_in_; }
  uint64_t malformed_in() const { return malformed_in_; }
  // Messages dropped because their connection's key has left the allow-list since it connected.
  uint64_t revoked_in() const { return revoked_in_; }
  // Messages dropped because they came under a routing id ZeroMQ made up (a NUL byte first): a
  // worker's old connection, renamed when the worker reconnected under its id (handover), or a
  // peer that set no id. The worker sends what matters again on its new connection; taken under
  // the made-up id, a queued Register registered a phantom worker.
  uint64_t anonymous_in() const { return anonymous_in_; }
  uint64_t workers_refused() const;  // handshakes refused by the allow-list (0 without CurveZMQ)
  uint64_t proposals_run() const { return proposals_run_; }  // by the proposer threads

 private:
  // To the worker's current connection (routes_), else to a routing id equal to its worker id.
  void Send(const Outgoing& o);
  void SendTo(const std::string& routing, const proto::wire::Message& message);
  void Log(const std::string& line) const;
  // A proposer thread's loop; the core's new requests handed to them (called with core_mu_
  // held, after every use of the core); its results handed back to the core (by the loop).
  void Propose();
  void HandOverRequests();
  void ReturnResults();
  // Durability (DispatcherOptions::deferred_store). WriteMark: under core_mu_, the store's mark
  // (0 without a deferred store). AwaitDurable: without core_mu_, true once what was written
  // between the two marks is on disk (at once when nothing was); false when the sync failed
  // (reported once through on_sync_failure).
  uint64_t WriteMark() { return options_.deferred_store ? options_.deferred_store->WriteMark() : 0; }
  bool AwaitDurable(uint64_t before, uint64_t after);
  struct DurableOnExit {
    Dispatcher* d;
    uint64_t before = 0, after = 0;
    ~DurableOnExit() {
      if (std::uncaught_exceptions() == 0) d->AwaitDurable(before, after);
    }
  };
  struct HandOverOnExit {
    Dispatcher* d;
    DurableOnExit* durable;
    ~HandOverOnExit() {
      d->HandOverRequests();
      durable->after = d->WriteMark();
    }
  };

  CoordinatorCore* core_;
  DispatcherOptions options_;
  std::mutex core_mu_;
  std::mutex post_mu_;
  std::vector<Outgoing> posted_;
  struct Sock;
  std::unique_ptr<Sock> sock_;
  std::atomic<uint64_t> messages_in_{0}, malformed_in_{0}, proposals_run_{0}, revoked_in_{0};
  std::atomic<bool> shutting_down_{false};  // BeginShutdown
  std::map<std::string, int64_t> revoked_logged_ms_;  // worker id -> last logged (loop thread only)
  // worker id -> (last logged, not logged since): a malformed message is logged once a minute
  // per worker (an old worker after an upgrade sent one a second, forever), with the count of
  // the ones left out. Loop thread only.
  std::map<std::string, std::pair<int64_t, uint64_t>> malformed_logged_;
  // With keys: worker id -> the public key that first sent a message under it (loop thread
  // only). Another key under that id is an impostor: its messages are dropped, unless the owning
  // key has left the allow-list: then the id passes to the new key (a worker re-keyed by replacing
  // its line in authorized_workers keeps its id, its running training jobs and its work
  // directory, without a coordinator restart).
  std::map<std::string, std::string> worker_keys_;
  bool KeyOwnsId(const std::string& wid, const std::string& key);
  std::atomic<uint64_t> impostors_in_{0};
  std::atomic<uint64_t> anonymous_in_{0};
  int64_t anonymous_logged_ms_ = -60000;  // loop thread only
  // Worker id -> the routing id of its current connection (loop thread only). A worker process
  // connects as "<worker id>/<its session>" (WorkerIdOf), so another process under the same id
  // has a connection of its own: with ZeroMQ's handover a second worker started under a running
  // one's id took that worker's connection over before its Register was read (and refused), and
  // the running worker heard nothing until it reconnected, its lease nearly out. A Register's
  // answer goes to its own connection; an accepted one makes it the worker's current connection.
  std::map<std::string, std::string> routes_;
  std::atomic<uint64_t> stale_in_{0};
  int64_t stale_logged_ms_ = -60000;  // loop thread only
  std::mutex proposal_mu_;  // guards the three below
  std::condition_variable proposal_cv_;
  std::deque<ProposalRequest> proposal_todo_;
  std::vector<ProposalResult> proposal_done_;
  bool proposer_stop_ = false;
  std::atomic<bool> sync_failure_reported_{false};
};

// Milliseconds since the Unix epoch, from the system clock when the process began and the
// monotonic clock since (common/clock.h): a stepped system clock moves no lease, tick or deadline.
int64_t SystemNowMs();

}  // namespace hpo::coordinator
