// tests/loopback.h: a TCP socket bound to a free port of 127.0.0.1, for tests that need a port
// nobody else has (a server of their own, or one to leave closed or in use).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace hpo::testing {

struct LoopbackSocket {
  int fd = -1;   // bound (and listening with `backlog` > 0); -1 when that failed
  int port = 0;  // the port the kernel picked
};

// Binds 127.0.0.1:0 and, with backlog > 0, listens. The caller closes fd.
inline LoopbackSocket BindLoopback(int backlog = 0) {
  LoopbackSocket s;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      (backlog > 0 && ::listen(fd, backlog) != 0) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return s;
  }
  s.fd = fd;
  s.port = ntohs(addr.sin_port);
  return s;
}

}  // namespace hpo::testing
