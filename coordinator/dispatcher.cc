#include "coordinator/dispatcher.h"

#include <cerrno>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/clock.h"
#include "coordinator/curve_auth.h"
#include "proto/messages.h"

namespace hpo::coordinator {

int64_t SystemNowMs() { return MonotonicWallMs(); }

struct Dispatcher::Sock {
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::unique_ptr<curve::ZapHandler> zap;  // declared after ctx and router: destroyed before them
  std::string endpoint;
};

Dispatcher::Dispatcher(CoordinatorCore* core, DispatcherOptions options)
    : core_(core), options_(std::move(options)), sock_(std::make_unique<Sock>()) {
  if (!options_.now_ms) options_.now_ms = SystemNowMs;
  if (!options_.log) options_.log = [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
}

Dispatcher::~Dispatcher() = default;

void Dispatcher::Log(const std::string& line) const { options_.log(line); }

Status Dispatcher::Bind() {
  if (!options_.curve_secret_key.empty()) {
    HPO_RETURN_IF_ERROR(curve::CheckCurveAvailable());
    if (!curve::IsZ85Key(options_.curve_secret_key)) {
      return Status::InvalidArgument("the coordinator's CurveZMQ secret key is not 40 characters of Z85 text");
    }
    if (options_.curve_allow_list.empty()) {
      return Status::InvalidArgument("CurveZMQ needs the worker allow-list file (authorized_workers)");
    }
    if (!sock_->zap) {
      auto zap = curve::ZapHandler::Start(sock_->ctx.handle(), options_.curve_allow_list, options_.log);
      if (!zap.ok()) return zap.status();
      sock_->zap = std::move(zap).value();
    }
  }
  try {
    if (sock_->zap) {
      sock_->router.set(zmq::sockopt::curve_server, 1);
      sock_->router.set(zmq::sockopt::curve_secretkey, options_.curve_secret_key);
      sock_->router.set(zmq::sockopt::zap_domain, "hpo");
      // Refuse (rather than admit) clients if the ZAP handler were ever unreachable. A draft
      // option: libzmq builds without drafts reject it, and there the handler bound above (which
      // lives as long as the socket) is what guarantees every handshake is checked.
      int enforce = 1;
      constexpr int kZapEnforceDomain = 93;  // ZMQ_ZAP_ENFORCE_DOMAIN, declared only in draft builds
      (void)zmq_setsockopt(sock_->router.handle(), kZapEnforceDomain, &enforce, sizeof enforce);
    }
    sock_->router.set(zmq::sockopt::handshake_ivl, static_cast<int>(options_.handshake_ms));
    if (sock_->zap) {
      // With keys a worker id belongs to the key that first registered it (worker_keys_), and a
      // second connection under an id in use waits until the first one is gone: with handover,
      // any allow-listed key took over another worker's id and connection, received its
      // assignments and had the real worker refused. ZeroMQ heartbeats close a connection whose
      // peer vanished (no FIN: a rebooted machine), so a reconnecting worker is not kept out.
      sock_->router.set(zmq::sockopt::router_handover, 0);
      sock_->router.set(zmq::sockopt::heartbeat_ivl, 1000);
      sock_->router.set(zmq::sockopt::heartbeat_timeout, 5000);
    } else {
      sock_->router.set(zmq::sockopt::router_handover, 1);  // a reconnecting worker takes over its id
    }
    sock_->router.set(zmq::sockopt::router_mandatory, 1);  // sending to a gone worker is an error, not silence
    sock_->router.set(zmq::sockopt::linger, 0);
    sock_->router.set(zmq::sockopt::maxmsgsize, int64_t{16} << 20);
    // An IPv6 address (tcp://[::]:7700, tcp://[::1]:7700) needs ZeroMQ's IPv6 on ("No such device"
    // without it); tcp://*:7700 and 0.0.0.0 stay IPv4 as before.
    if (options_.listen.find('[') != std::string::npos) sock_->router.set(zmq::sockopt::ipv6, true);
    sock_->router.bind(options_.listen);
    sock_->endpoint = sock_->router.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    // ZeroMQ binds an address or an interface, not a host name: tcp://localhost:7700 fails with
    // "No such device", which does not say so.
    std::string hint;
    if (e.num() == ENODEV && options_.listen.rfind("tcp://", 0) == 0) {
      hint = " (a tcp:// endpoint to listen on names an IP address or a network interface, not a host name: "
             "tcp://127.0.0.1:PORT for this machine only, tcp://0.0.0.0:PORT for every address)";
    }
    return Status::Unavailable("cannot listen on " + options_.listen + ": " + e.what() + hint);
  }
  return Status::Ok();
}

std::string Dispatcher::endpoint() const { return sock_->endpoint; }

bool Dispatcher::secure() const { return sock_->zap != nullptr; }

void Dispatcher::ReloadAllowList() {
  if (sock_->zap) sock_->zap->RequestReload();
}

uint64_t Dispatcher::workers_refused() const { return sock_->zap ? sock_->zap->refused() : 0; }

bool Dispatcher::KeyOwnsId(const std::string& wid, const std::string& key) {
  auto [it, first] = worker_keys_.emplace(wid, key);
  if (first || it->second == key) return true;
  if (sock_->zap && sock_->zap->Allows(it->second)) return false;  // both keys allowed: an impostor
  Log("dispatcher: worker '" + wid + "' now has the key " + key + " (its previous key, " + it->second +
      ", left the allow-list)");
  it->second = key;
  return true;
}

void Dispatcher::Post(std::vector<Outgoing> out) {
  if (out.empty()) return;
  std::lock_guard<std::mutex> lock(post_mu_);
  for (auto& o : out) posted_.push_back(std::move(o));
}

namespace {

// A routing id as people can read it: ZeroMQ gives a peer that set none a binary one starting
// with a NUL byte, which cut the log line short there (and hid the reason after it).
std::string PrintableId(const std::string& id) {
  std::string out;
  for (unsigned char c : id) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out.empty() ? "(no id)" : out;
}

}  // namespace

std::string WorkerIdOf(const std::string& routing) {
  const size_t slash = routing.rfind('/');
  return slash == std::string::npos ? routing : routing.substr(0, slash);
}

void Dispatcher::Send(const Outgoing& o) {
  auto route = routes_.find(o.worker_id);
  SendTo(route != routes_.end() ? route->second : o.worker_id, o.message);
}

void Dispatcher::SendTo(const std::string& routing, const proto::wire::Message& message) {
  if (Status v = proto::wire::Validate(message); !v.ok()) {
    // The core built a message its peer would reject: a bug, reported loudly, not sent.
    Log("dispatcher: internal error: refusing to send an invalid " + std::string(proto::wire::MsgTypeName(proto::wire::TypeOf(message))) +
        " to worker " + PrintableId(routing) + ": " + v.message());
    return;
  }
  std::vector<std::string> frames = proto::wire::EncodeFrames(message);
  try {
    sock_->router.send(zmq::buffer(routing), zmq::send_flags::sndmore);
    for (size_t i = 0; i < frames.size(); ++i) {
      sock_->router.send(zmq::buffer(frames[i]),
                         i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    Log("dispatcher: cannot send to worker " + PrintableId(routing) + ": " + e.what());
  }
}

void Dispatcher::Propose() {
  for (;;) {
    ProposalRequest req;
    {
      std::unique_lock<std::mutex> lock(proposal_mu_);
      proposal_cv_.wait(lock, [&] { return proposer_stop_ || !proposal_todo_.empty(); });
      if (proposer_stop_) return;
      req = std::move(proposal_todo_.front());
      proposal_todo_.pop_front();
    }
    if (options_.before_proposal) options_.before_proposal(req.job);
    ProposalResult res = CoordinatorCore::RunProposal(req);
    ++proposals_run_;
    std::lock_guard<std::mutex> lock(proposal_mu_);
    proposal_done_.push_back(std::move(res));
  }
}

void Dispatcher::HandOverRequests() {
  std::vector<ProposalRequest> requests = core_->TakeProposalRequests();
  if (requests.empty()) return;
  {
    std::lock_guard<std::mutex> lock(proposal_mu_);
    for (ProposalRequest& r : requests) proposal_todo_.push_back(std::move(r));
  }
  proposal_cv_.notify_all();
}

void Dispatcher::ReturnResults() {
  std::vector<ProposalResult> results;
  {
    std::lock_guard<std::mutex> lock(proposal_mu_);
    results.swap(proposal_done_);
  }
  if (results.empty()) return;
  std::vector<Outgoing> placed;
  uint64_t before = 0, after = 0;
  {
    std::lock_guard<std::mutex> lock(core_mu_);
    before = WriteMark();
    placed = core_->OnProposals(std::move(results), options_.now_ms());
    HandOverRequests();
    after = WriteMark();
  }
  if (!AwaitDurable(before, after)) return;
  for (const auto& o : placed) Send(o);
}

bool Dispatcher::AwaitDurable(uint64_t before, uint64_t after) {
  if (options_.deferred_store == nullptr) return true;
  // After a failed sync no reply goes out, even one that wrote nothing: it may rest on what did.
  if (sync_failure_reported_.load()) return false;
  if (after <= before) return true;
  const Status s = options_.deferred_store->MakeDurable(after);
  if (s.ok()) return true;
  if (!sync_failure_reported_.exchange(true)) {
    Log("dispatcher: " + s.message() + "; from now on nothing is acknowledged to workers");
    if (options_.on_sync_failure) options_.on_sync_failure(s);
  }
  return false;
}

Status Dispatcher::DeleteTuningJob(const std::string& name, const std::atomic<bool>* stop) {
  bool found = false;
  for (;;) {
    if ((stop && stop->load()) || shutting_down_.load()) {
      return Status::Unavailable("the coordinator is stopping; the deletion of tuning job " + name +
                                 " goes on when it starts again");
    }
    Result<bool> more = WithCore([&](CoordinatorCore& c) -> Result<bool> {
      found = found || c.FindJob(name) != nullptr;
      return c.DeleteSlice(name, Now());
    });
    if (!more.ok()) return more.status();
    if (!*more) break;
    // A moment for the others: taken back at once, the lock went to this thread again and again
    // (a mutex is not fair), and the loop's messages waited seconds all the same.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Status s = WithCore([&](CoordinatorCore& c) { return c.Delete(name, Now()); });
  if (s.code() == StatusCode::kNotFound && found) return Status::Ok();  // another caller finished it
  return s;
}

void Dispatcher::Run(const std::atomic<bool>& stop) {
  {
    std::lock_guard<std::mutex> lock(proposal_mu_);
    proposer_stop_ = false;
  }
  std::vector<std::thread> proposers;
  for (int i = 0; i < std::max(1, options_.proposer_threads); ++i) proposers.emplace_back([this] { Propose(); });
  // On the way out: the proposals in progress finish, and the core forgets every request, so
  // that no job is left waiting for one (a later Run asks again).
  struct JoinProposers {
    Dispatcher* d;
    std::vector<std::thread>* threads;
    ~JoinProposers() {
      {
        std::lock_guard<std::mutex> lock(d->proposal_mu_);
        d->proposer_stop_ = true;
      }
      d->proposal_cv_.notify_all();
      for (std::thread& t : *threads) t.join();
      d->proposal_todo_.clear();
      d->proposal_done_.clear();
      std::lock_guard<std::mutex> lock(d->core_mu_);
      d->core_->CancelProposals();
    }
  } join_proposers{this, &proposers};
  // Deletions a stopped coordinator left part-way: finished beside the loop (declared after the
  // proposers: joined before them).
  std::vector<std::string> interrupted;
  {
    std::lock_guard<std::mutex> lock(core_mu_);
    interrupted = core_->TakeInterruptedDeletions();
  }
  std::thread finisher;
  if (!interrupted.empty()) {
    finisher = std::thread([this, &stop, interrupted] {
      for (const std::string& name : interrupted) {
        const auto began = std::chrono::steady_clock::now();
        Status s = DeleteTuningJob(name, &stop);
        if (s.code() == StatusCode::kNotFound) s = Status::Ok();  // a DeleteHyperParameterTuningJob finished it
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
        char took[32];
        std::snprintf(took, sizeof took, "%.1f s", secs);
        Log(s.ok() ? "dispatcher: finished deleting tuning job " + name + " (interrupted when the coordinator stopped; " +
                         took + ")"
                   : "dispatcher: could not finish deleting tuning job " + name + ": " + s.message());
      }
    });
  }
  struct JoinFinisher {
    std::thread* t;
    ~JoinFinisher() {
      if (t->joinable()) t->join();
    }
  } join_finisher{&finisher};
  int64_t next_tick = 0;
  int64_t tick_at = 0;
  int64_t last_heard_at = 0;
  constexpr int64_t kStalledMs = 1000;
  while (!stop.load()) {
    ReturnResults();
    std::vector<Outgoing> out;
    {
      std::lock_guard<std::mutex> lock(post_mu_);
      out.swap(posted_);
    }
    if (sync_failure_reported_.load()) out.clear();  // they may acknowledge what is not on disk
    for (const auto& o : out) Send(o);

    zmq::pollitem_t items[] = {{sock_->router.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(options_.poll_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      Log(std::string("dispatcher: poll failed: ") + e.what());
      continue;
    }
    // Everything that reached the socket by now is read below: the time leases are judged at.
    const int64_t heard_at = options_.now_ms();
    // The loop reads the socket every few milliseconds: a gap of seconds since the last reading is
    // the coordinator's own stall (SIGSTOP, a paused VM, swapping), and the workers' heartbeats
    // of that time wait unread (some still in the kernel's buffers). It is not counted against
    // their leases: a 10 s pause once lost every worker, and training jobs that had completed
    // meanwhile failed or ran again.
    if (last_heard_at > 0 && heard_at - last_heard_at > kStalledMs) {
      std::lock_guard<std::mutex> lock(core_mu_);
      core_->CreditStall(heard_at - last_heard_at, heard_at);
    }
    last_heard_at = heard_at;
    // Drain everything that is ready, then hand it to the core as one batch: one store commit
    // for the lot, and the replies leave only after it.
    std::vector<CoordinatorCore::Incoming> batch;
    std::vector<std::string> routings;  // each message's connection (its ZeroMQ routing id)
    size_t burst_bytes = 0;
    const size_t budget = options_.burst_bytes > 0 ? options_.burst_bytes : SIZE_MAX;
    for (int burst = 0; burst < 1000 && burst_bytes < budget && (items[0].revents & ZMQ_POLLIN); ++burst) {
      std::vector<zmq::message_t> parts;
      zmq::recv_result_t got;
      try {
        got = zmq::recv_multipart(sock_->router, std::back_inserter(parts), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        Log(std::string("dispatcher: receive failed: ") + e.what());
        break;
      }
      if (!got) break;
      ++messages_in_;
      for (const auto& p : parts) burst_bytes += p.size();
      const std::string routing = parts.empty() ? "" : parts[0].to_string();
      // A worker process connects as "<worker id>/<its session>" (WorkerIdOf).
      std::string wid = WorkerIdOf(routing);
      // A routing id ZeroMQ made up (every worker sets its own, its worker id): dropped, and not
      // answered (nothing reaches such a connection). See anonymous_in().
      if (wid.empty() || wid[0] == '\0') {
        const uint64_t n = ++anonymous_in_;
        if (const int64_t t = options_.now_ms(); t - anonymous_logged_ms_ >= 60000) {
          anonymous_logged_ms_ = t;
          Log("dispatcher: dropped a message from a connection without a worker id (" + PrintableId(wid) + ", " +
              std::to_string(n) +
              " so far): a worker's old connection after it reconnected (it sends again on the new one), or a "
              "peer that is not an hpo worker");
        }
        continue;
      }
      // A connection admitted before its key left the allow-list: its messages are dropped from
      // the reload on, so the worker is locked out now, not at its next handshake (the core loses
      // it when its lease runs out, and its training jobs run again elsewhere).
      if (sock_->zap && parts.size() > 1) {
        std::string key;
        try {
          key = parts[1].gets("User-Id");
        } catch (const zmq::error_t&) {
        }
        if (sock_->zap->Allows(key) && !KeyOwnsId(wid, key)) {
          ++impostors_in_;
          const int64_t t = options_.now_ms();
          if (t - revoked_logged_ms_[wid] > 60000) {
            revoked_logged_ms_[wid] = t;
            Log("dispatcher: dropped a message from worker '" + PrintableId(wid) + "': that id belongs to the key " +
                worker_keys_[wid] + ", and this connection has the key " + key +
                "; give each worker its own --id (a re-keyed worker takes its id over once its old key is removed "
                "from authorized_workers)");
            proto::wire::Error e;
            e.code = "NotAuthorized";
            e.message = "the worker id " + wid +
                        " belongs to another worker's key on this coordinator; give each worker its own --id";
            SendTo(routing, e);
          }
          continue;
        }
        if (!sock_->zap->Allows(key)) {
          ++revoked_in_;
          const int64_t t = options_.now_ms();
          if (t - revoked_logged_ms_[wid] > 60000) {  // said once a minute, to both sides
            revoked_logged_ms_[wid] = t;
            Log("dispatcher: dropped a message from worker '" + PrintableId(wid) + "': its key " + key +
                " is no longer in the allow-list; once its lease runs out it is lost, and its training jobs with it "
                "(retried elsewhere under their RetryStrategy, else Failed)");
            proto::wire::Error e;
            e.code = "NotAuthorized";
            e.message = "this worker's key was removed from the coordinator's allow-list; nothing it sends is read";
            SendTo(routing, e);
          }
          continue;
        }
      }
      std::vector<std::string> frames;
      for (size_t i = 1; i < parts.size(); ++i) frames.push_back(parts[i].to_string());
      Result<proto::wire::Message> msg = proto::wire::DecodeFrames(frames);
      if (!msg.ok()) {
        ++malformed_in_;
        if (malformed_logged_.size() > 10000) malformed_logged_.clear();  // ids are the sender's choice
        auto& [last_ms, unlogged] = malformed_logged_[wid];
        if (const int64_t t = options_.now_ms(); t - last_ms >= 60000 || last_ms == 0) {
          // (The id and what it sent are escaped: an unauthenticated peer's bytes went raw into the log.)
          Log("dispatcher: rejected a message from worker '" + PrintableId(wid) +
              "': " + PrintableId(msg.status().message()) +
              (unlogged ? " (and " + std::to_string(unlogged) + " more from it since the last such line)" : ""));
          last_ms = t;
          unlogged = 0;
        } else {
          ++unlogged;
        }
        proto::wire::Error e;
        e.code = "MalformedMessage";
        e.message = msg.status().message();
        if (!frames.empty() && frames[0].size() == 2) {
          e.in_reply_to = static_cast<uint16_t>((static_cast<uint8_t>(frames[0][0]) << 8) |
                                                static_cast<uint8_t>(frames[0][1]));
        }
        SendTo(routing, e);
        continue;
      }
      batch.push_back({std::move(wid), std::move(msg).value()});
      routings.push_back(routing);
    }
    if (!batch.empty()) {
      // In order, in runs handed to the core together; a Register on its own, so that its answer
      // goes to the connection it came on and, accepted, that connection becomes its worker's
      // (routes_). Anything else from a connection that is not its worker's current one (a
      // process the coordinator refused, or one replaced by a restart) is dropped.
      std::vector<CoordinatorCore::Incoming> run;
      auto handle = [&](const std::string* register_routing) {
        if (run.empty()) return;
        std::vector<Outgoing> replies;
        uint64_t before = 0, after = 0;
        {
          std::lock_guard<std::mutex> lock(core_mu_);
          before = WriteMark();
          replies = core_->OnMessages(run, options_.now_ms());
          HandOverRequests();
          after = WriteMark();
        }
        // The batch's commit reaches the disk without the core's mutex held: API calls go on
        // meanwhile, and the replies (acknowledgements among them) leave only after it.
        if (!AwaitDurable(before, after)) replies.clear();
        const std::string registering = register_routing ? run.front().worker_id : "";
        if (register_routing) {
          for (const auto& r : replies) {
            const auto* ack = std::get_if<proto::wire::RegisterAck>(&r.message);
            if (ack && r.worker_id == registering && ack->accepted) routes_[registering] = *register_routing;
          }
        }
        for (const auto& r : replies) {
          if (register_routing && r.worker_id == registering && std::holds_alternative<proto::wire::RegisterAck>(r.message)) {
            SendTo(*register_routing, r.message);
          } else {
            Send(r);
          }
        }
        run.clear();
      };
      for (size_t i = 0; i < batch.size(); ++i) {
        const std::string& wid = batch[i].worker_id;
        if (std::holds_alternative<proto::wire::Register>(batch[i].message)) {
          handle(nullptr);
          run.push_back(std::move(batch[i]));
          handle(&routings[i]);
          continue;
        }
        auto route = routes_.find(wid);
        if (route == routes_.end()) {
          routes_[wid] = routings[i];  // e.g. after this coordinator restarted: its connection now
        } else if (route->second != routings[i]) {
          const uint64_t n = ++stale_in_;
          if (const int64_t t = options_.now_ms(); t - stale_logged_ms_ >= 60000) {
            stale_logged_ms_ = t;
            Log("dispatcher: dropped a message from a connection of worker '" + PrintableId(wid) + "' (" +
                PrintableId(routings[i]) +
                ") that is not its current one (" + PrintableId(route->second) + "; " + std::to_string(n) +
                " so far): a process under that id that was refused, or that a restart replaced");
          }
          continue;
        }
        run.push_back(std::move(batch[i]));
      }
      handle(nullptr);
      if (options_.after_batch) options_.after_batch();
    }
    int64_t now = options_.now_ms();
    if (now >= next_tick) {
      next_tick = now + options_.tick_ms;
      // The tick runs at heard_at, not now: the time the core just spent on the batch (proposals
      // under a loaded CPU, a slow fsync) is time nobody read the socket, and a worker whose
      // heartbeat waits there is not lost (that once re-ran a worker's four running trials).
      tick_at = std::max(tick_at, heard_at);
      std::vector<Outgoing> ticked;
      uint64_t before = 0, after = 0;
      {
        std::lock_guard<std::mutex> lock(core_mu_);
        before = WriteMark();
        ticked = core_->OnTick(tick_at);
        HandOverRequests();
        after = WriteMark();
      }
      if (!AwaitDurable(before, after)) ticked.clear();
      for (const auto& r : ticked) Send(r);
    }
  }
}

}  // namespace hpo::coordinator
