#include "worker/handshake_monitor.h"

#include <chrono>
#include <cstring>

#include <zmq.h>

namespace hpo::worker {

namespace {
std::atomic<uint64_t> g_monitor_seq{0};

constexpr int kEvents = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
}  // namespace

HandshakeMonitor::HandshakeMonitor(void* ctx, void* socket, std::string endpoint, std::string public_key,
                                   std::function<void(const std::string&)> log)
    : socket_(socket), endpoint_(std::move(endpoint)), public_key_(std::move(public_key)), log_(std::move(log)) {
  const std::string addr = "inproc://hpo-handshake-monitor-" + std::to_string(++g_monitor_seq);
  if (zmq_socket_monitor(socket_, addr.c_str(), kEvents) != 0) {
    log_(std::string("worker: cannot watch the connection's handshakes: ") + zmq_strerror(zmq_errno()));
    socket_ = nullptr;
    return;
  }
  void* pair = zmq_socket(ctx, ZMQ_PAIR);
  if (!pair || zmq_connect(pair, addr.c_str()) != 0) {
    if (pair) zmq_close(pair);
    zmq_socket_monitor(socket_, nullptr, 0);
    socket_ = nullptr;
    return;
  }
  thread_ = std::thread([this, pair] { Loop(pair); });
}

HandshakeMonitor::~HandshakeMonitor() {
  if (socket_) zmq_socket_monitor(socket_, nullptr, 0);
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void HandshakeMonitor::Loop(void* pair) {
  int linger = 0;
  zmq_setsockopt(pair, ZMQ_LINGER, &linger, sizeof linger);
  int last_kind = 0;
  auto last_log = std::chrono::steady_clock::time_point{};
  bool failing = false;
  while (!stop_.load()) {
    zmq_pollitem_t item{pair, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 100) <= 0) continue;
    // An event is two frames: [uint16 event, uint32 value] and the peer endpoint.
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, pair, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      continue;
    }
    uint16_t event = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&m) >= 6) {
      std::memcpy(&event, zmq_msg_data(&m), 2);
      std::memcpy(&value, static_cast<const char*>(zmq_msg_data(&m)) + 2, 4);
    }
    bool more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    while (more) {  // the endpoint frame
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, pair, 0) < 0) more = false;
      else more = zmq_msg_more(&m);
      zmq_msg_close(&m);
    }
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      ++successes_;
      if (failing) {
        log_("worker: handshake with the coordinator at " + endpoint_ + " succeeded" +
             (public_key_.empty() ? "" : " (CurveZMQ, key accepted)"));
      }
      failing = false;
      last_kind = 0;
      continue;
    }
    ++failures_;
    failing = true;
    auto now = std::chrono::steady_clock::now();
    if (event == last_kind && now - last_log < std::chrono::seconds(30)) continue;
    last_kind = event;
    last_log = now;
    std::string line = "worker: handshake with the coordinator at " + endpoint_ + " failed: ";
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      line += "the coordinator refused this worker's key (ZAP status " + std::to_string(value) + ")";
      if (!public_key_.empty()) {
        line += "; public key " + public_key_ + " is not in the coordinator's allow-list. Add it there (`hpo keygen "
                "--worker` writes keys and appends them to authorized_workers); the worker keeps retrying";
      }
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
      line += "protocol error " + std::to_string(value) + ": the two sides disagree on security; " +
              (public_key_.empty()
                   ? "the coordinator probably requires CurveZMQ: start this worker with --keys DIR (from `hpo keygen`)"
                   : "the coordinator may run without keys (--insecure), or coordinator.pub is not its key");
    } else {
      line += std::string("no handshake completed (") + zmq_strerror(static_cast<int>(value)) + "); " +
              (public_key_.empty() ? "does the coordinator require CurveZMQ keys (--keys)?"
                                   : "is coordinator.pub the key of the coordinator at this address?") +
              " Or is this not its ZeroMQ port: workers connect to the coordinator's --listen port (7700), not its "
              "--http one (7780)";
    }
    log_(line);
  }
  zmq_close(pair);
}

}  // namespace hpo::worker
