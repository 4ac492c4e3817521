// tests/fault/fault_proxy.h: a TCP proxy for fault tests, put between workers and the
// coordinator. It forwards bytes both ways and, on command, misbehaves the way networks do:
//   kPass       forward at once
//   kDelay      hold every chunk for delay_ms before forwarding it (a slow or congested link)
//   kPartition  forward nothing and keep the connections open (a partition: packets vanish,
//               nobody is told; what was held is delivered when the partition heals)
//   Reset()     close every connection at once (a link or NAT reset; ZeroMQ reconnects)
// Thread safety: the control methods may be called from any thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hpo::testing {

class FaultProxy {
 public:
  enum class Mode { kPass, kDelay, kPartition };

  FaultProxy(int listen_port, int upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(listen_port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0) {
      throw std::runtime_error("fault proxy: cannot listen on port " + std::to_string(listen_port));
    }
    thread_ = std::thread([this] { Loop(); });
  }
  ~FaultProxy() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
    for (auto& c : conns_) c.Close();
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  void Pass() { mode_ = Mode::kPass; }
  void Delay(int ms) {
    delay_ms_ = ms;
    mode_ = Mode::kDelay;
  }
  void Partition() { mode_ = Mode::kPartition; }
  void Reset() { reset_ = true; }
  uint64_t resets() const { return resets_done_; }

 private:
  struct Chunk {
    std::chrono::steady_clock::time_point due;
    std::string bytes;
  };
  struct Pipe {  // one direction
    int from = -1, to = -1;
    std::deque<Chunk> held;
  };
  struct Conn {
    Pipe up, down;  // worker -> coordinator, coordinator -> worker
    bool dead = false;
    void Close() {
      if (up.from >= 0) ::close(up.from);
      if (up.to >= 0) ::close(up.to);
      up.from = up.to = down.from = down.to = -1;
      dead = true;
    }
  };

  void Accept() {
    int c = ::accept(listen_fd_, nullptr, nullptr);
    if (c < 0) return;
    int u = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(upstream_port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(u);
      ::close(c);
      return;
    }
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn conn;
    conn.up = Pipe{c, u, {}};
    conn.down = Pipe{u, c, {}};
    conns_.push_back(std::move(conn));
  }

  // Reads what is there into the pipe's queue; false when the peer closed.
  bool Read(Pipe& p) {
    char buf[65536];
    ssize_t n = ::recv(p.from, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    const int delay = mode_.load() == Mode::kDelay ? delay_ms_.load() : 0;
    p.held.push_back({std::chrono::steady_clock::now() + std::chrono::milliseconds(delay), std::string(buf, static_cast<size_t>(n))});
    return true;
  }
  // Forwards what is due, unless partitioned; false on a write error.
  bool Flush(Pipe& p) {
    if (mode_.load() == Mode::kPartition) return true;
    const auto now = std::chrono::steady_clock::now();
    while (!p.held.empty() && p.held.front().due <= now) {
      std::string& b = p.held.front().bytes;
      ssize_t n = ::send(p.to, b.data(), b.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      b.erase(0, static_cast<size_t>(n));
      if (!b.empty()) return true;
      p.held.pop_front();
    }
    return true;
  }

  void Loop() {
    while (!stop_) {
      if (reset_.exchange(false)) {
        for (auto& c : conns_) c.Close();
        ++resets_done_;
      }
      std::erase_if(conns_, [](const Conn& c) { return c.dead; });
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (auto& c : conns_) {
        fds.push_back({c.up.from, POLLIN, 0});
        fds.push_back({c.down.from, POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), 5);
      if (fds[0].revents & POLLIN) Accept();
      for (size_t i = 0; i < conns_.size() && 1 + 2 * i + 1 < fds.size(); ++i) {
        Conn& c = conns_[i];
        bool ok = true;
        if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) ok = ok && Read(c.up);
        if (fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) ok = ok && Read(c.down);
        ok = ok && Flush(c.up) && Flush(c.down);
        if (!ok) c.Close();
      }
    }
  }

  int listen_fd_ = -1;
  int upstream_port_;
  std::atomic<bool> stop_{false}, reset_{false};
  std::atomic<Mode> mode_{Mode::kPass};
  std::atomic<int> delay_ms_{0};
  std::atomic<uint64_t> resets_done_{0};
  std::vector<Conn> conns_;  // the proxy thread's own
  std::thread thread_;
};

}  // namespace hpo::testing
