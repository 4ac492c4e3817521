// CurveZMQ keys and the ZAP allow-list (coordinator/curve_auth.h), over real ZeroMQ sockets on
// loopback; the worker's handshake log (worker/handshake_monitor.h) is checked on the same
// connections.
#include "coordinator/curve_auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "common/file_util.h"
#include "tests/loopback.h"
#include "worker/handshake_monitor.h"

namespace hpo::coordinator::curve {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/hpo-curve-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

mode_t ModeOf(const std::string& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

TEST(CurveKeys, KeygenWritesBothKeyPairsSecretsPrivateAndAllowsTheWorker) {
  ASSERT_TRUE(CheckCurveAvailable().ok()) << CheckCurveAvailable().message();
  TempDir t;
  const std::string dir = t.path() + "/keys";
  auto r = GenerateClusterKeys(dir);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir + "/coordinator.secret"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/worker.secret"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/coordinator.pub"), 0644u);
  auto coord = ReadKeyFile(dir + "/coordinator.secret", true);
  ASSERT_TRUE(coord.ok()) << coord.status().message();
  auto coord_pub = ReadKeyFile(dir + "/coordinator.pub", false);
  ASSERT_TRUE(coord_pub.ok());
  EXPECT_EQ(coord_pub->public_key, coord->public_key);
  EXPECT_TRUE(coord_pub->secret_key.empty()) << "the public file carries no secret";
  auto worker = ReadKeyFile(dir + "/worker.secret", true);
  ASSERT_TRUE(worker.ok());
  EXPECT_NE(worker->public_key, coord->public_key);
  auto list = ReadAllowList(dir + "/authorized_workers");
  ASSERT_TRUE(list.ok()) << list.status().message();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->begin()->first, worker->public_key);
  EXPECT_EQ(list->begin()->second, "worker");
  // The header comment says what the file is.
  auto text = ReadFile(dir + "/coordinator.secret");
  EXPECT_NE(text->find("SECRET"), std::string::npos);
}

TEST(CurveKeys, KeygenRefusesToReplaceExistingKeys) {
  TempDir t;
  ASSERT_TRUE(GenerateClusterKeys(t.path()).ok());
  auto before = ReadFile(t.path() + "/coordinator.secret");
  auto again = GenerateClusterKeys(t.path());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("refusing to replace"), std::string::npos);
  EXPECT_EQ(*ReadFile(t.path() + "/coordinator.secret"), *before) << "nothing was overwritten";
}

TEST(CurveKeys, AddingWorkersAppendsToTheAllowList) {
  TempDir t;
  ASSERT_TRUE(GenerateClusterKeys(t.path()).ok());
  ASSERT_TRUE(AddWorkerKey(t.path(), "").ok());
  auto named = AddWorkerKey(t.path(), "gpu-07");
  ASSERT_TRUE(named.ok()) << named.status().message();
  auto w2 = ReadKeyFile(t.path() + "/worker-2.secret", true);
  auto g7 = ReadKeyFile(t.path() + "/gpu-07.secret", true);
  ASSERT_TRUE(w2.ok() && g7.ok());
  EXPECT_EQ(ModeOf(t.path() + "/gpu-07.secret"), 0600u);
  auto list = ReadAllowList(t.path() + "/authorized_workers");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 3u);
  EXPECT_EQ(list->at(w2->public_key), "worker-2");
  EXPECT_EQ(list->at(g7->public_key), "gpu-07");
  EXPECT_FALSE(AddWorkerKey(t.path(), "gpu-07").ok()) << "an existing name is not overwritten";
  EXPECT_FALSE(AddWorkerKey(t.path(), "../evil").ok());
  EXPECT_FALSE(AddWorkerKey(t.path(), "coordinator").ok());
  TempDir empty;
  auto none = AddWorkerKey(empty.path(), "");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("hpo keygen --out"), std::string::npos);
}

TEST(CurveKeys, BadKeyFilesAndAllowListsAreErrorsNamingFileAndLine) {
  TempDir t;
  ASSERT_TRUE(GenerateClusterKeys(t.path()).ok());
  auto pub_as_secret = ReadKeyFile(t.path() + "/coordinator.pub", true);
  ASSERT_FALSE(pub_as_secret.ok());
  EXPECT_NE(pub_as_secret.status().message().find("no secret-key"), std::string::npos);
  // A secret that is not the public key's.
  auto c = ReadKeyFile(t.path() + "/coordinator.secret", true);
  auto w = ReadKeyFile(t.path() + "/worker.secret", true);
  {
    std::ofstream f(t.path() + "/mixed.secret");
    f << "public-key = \"" << c->public_key << "\"\nsecret-key = \"" << w->secret_key << "\"\n";
  }
  auto mixed = ReadKeyFile(t.path() + "/mixed.secret", true);
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("does not belong"), std::string::npos);
  EXPECT_FALSE(ReadKeyFile(t.path() + "/missing.secret", true).ok());

  auto list = ParseAllowList("# ok\n" + c->public_key + " a\nnot-a-key b\n", "allow");
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("allow:3: 'not-a-key' is not a CurveZMQ public key"), std::string::npos)
      << list.status().message();
  EXPECT_FALSE(ParseAllowList(c->public_key + " a b\n", "allow").ok());
  auto empty = ParseAllowList("# nobody yet\n\n", "allow");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(CurveKeys, AKeyContainingAHashIsAKeyNotAComment) {
  // '#' is one of Z85's 85 characters; about a third of all keys contain one.
  KeyPair kp;
  for (int i = 0; i < 200 && kp.public_key.find('#') == std::string::npos; ++i) kp = *GenerateKeyPair();
  ASSERT_NE(kp.public_key.find('#'), std::string::npos);
  auto list = ParseAllowList("# a comment\n" + kp.public_key + " hashy\n", "allow");
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->count(kp.public_key), 1u);
}

// A CURVE server ROUTER guarded by a ZapHandler, as the dispatcher sets it up, and clients.
class ZapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(GenerateClusterKeys(dir_.path()).ok());
    server_ = *ReadKeyFile(dir_.path() + "/coordinator.secret", true);
    good_ = *ReadKeyFile(dir_.path() + "/worker.secret", true);
    stranger_ = *GenerateKeyPair();
    auto zap = ZapHandler::Start(ctx_.handle(), dir_.path() + "/authorized_workers", [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(mu_);
      log_.push_back(l);
    });
    ASSERT_TRUE(zap.ok()) << zap.status().message();
    zap_ = std::move(zap).value();
    router_.set(zmq::sockopt::curve_server, 1);
    router_.set(zmq::sockopt::curve_secretkey, server_.secret_key);
    router_.set(zmq::sockopt::zap_domain, "hpo");
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  }
  void TearDown() override { zap_.reset(); }

  std::unique_ptr<zmq::socket_t> Client(const std::string& id, const KeyPair* kp) {
    auto s = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
    s->set(zmq::sockopt::routing_id, id);
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::reconnect_ivl, 50);
    s->set(zmq::sockopt::reconnect_ivl_max, 200);
    if (kp) {
      s->set(zmq::sockopt::curve_serverkey, server_.public_key);
      s->set(zmq::sockopt::curve_publickey, kp->public_key);
      s->set(zmq::sockopt::curve_secretkey, kp->secret_key);
    }
    return s;
  }

  // Sends "hello" from the client until the router receives it or the time is up; returns the
  // routing id the router saw, or "" when nothing arrived. The hellos an earlier exchange sent
  // before its first one arrived may still come in: those of other clients are skipped (a slow
  // run, under ThreadSanitizer, read a "late" hello as the refused "good" client's).
  std::string Exchange(zmq::socket_t& client, int ms) {
    const std::string self = client.get(zmq::sockopt::routing_id);
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      (void)client.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      while (item.revents & ZMQ_POLLIN) {
        zmq::message_t id, body;
        (void)router_.recv(id);
        (void)router_.recv(body);
        if (id.to_string() == self) return self;
        item.revents = 0;
        zmq::poll(&item, 1, std::chrono::milliseconds(0));
      }
    }
    return "";
  }

  bool Logged(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& l : log_) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  zmq::context_t ctx_{1};
  zmq::socket_t router_{ctx_, zmq::socket_type::router};
  std::unique_ptr<ZapHandler> zap_;  // after ctx_ and router_: destroyed first
  KeyPair server_, good_, stranger_;
  std::string endpoint_;
  std::mutex mu_;
  std::vector<std::string> log_;
};

TEST_F(ZapTest, AWorkerOnTheAllowListIsAdmitted) {
  auto c = Client("good", &good_);
  c->connect(endpoint_);
  EXPECT_EQ(Exchange(*c, 3000), "good");
  EXPECT_GE(zap_->accepted(), 1u);
  EXPECT_EQ(zap_->refused(), 0u);
}

TEST_F(ZapTest, AnUnknownKeyIsRefusedLoggedAndToldWhyWhileTheGoodWorkerIsServed) {
  std::mutex mu;
  std::vector<std::string> worker_log;
  auto bad = Client("stranger", &stranger_);
  worker::HandshakeMonitor monitor(ctx_.handle(), bad->handle(), endpoint_, stranger_.public_key,
                                   [&](const std::string& l) {
                                     std::lock_guard<std::mutex> lock(mu);
                                     worker_log.push_back(l);
                                   });
  bad->connect(endpoint_);
  EXPECT_EQ(Exchange(*bad, 1500), "") << "a refused worker's messages never reach the coordinator";
  EXPECT_GE(zap_->refused(), 1u);
  EXPECT_TRUE(Logged("refused a worker from"));
  EXPECT_TRUE(Logged(stranger_.public_key));
  EXPECT_GE(monitor.failures(), 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_FALSE(worker_log.empty());
    EXPECT_NE(worker_log.front().find("refused this worker's key"), std::string::npos) << worker_log.front();
    EXPECT_NE(worker_log.front().find(stranger_.public_key), std::string::npos);
  }
  auto good = Client("good", &good_);
  good->connect(endpoint_);
  EXPECT_EQ(Exchange(*good, 3000), "good");
}

// A worker pointed at the coordinator's HTTP port (--connect tcp://HOST:7780) was asked only
// whether the coordinator requires keys: the line now says which port workers connect to.
TEST(HandshakeMonitorTest, AWorkerAtAnHttpPortIsToldWhichPortWorkersUse) {
  const hpo::testing::LoopbackSocket listening = hpo::testing::BindLoopback(/*backlog=*/4);
  ASSERT_GE(listening.fd, 0);
  const int server = listening.fd;
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(listening.port);
  std::atomic<bool> done{false};
  std::thread http([&] {  // what an HTTP server answers to a ZeroMQ greeting
    while (!done.load()) {
      pollfd p{server, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int c = ::accept(server, nullptr, nullptr);
      if (c < 0) continue;
      char buf[64];
      (void)::recv(c, buf, sizeof buf, 0);
      const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)::send(c, reply, sizeof reply - 1, MSG_NOSIGNAL);
      ::close(c);
    }
  });
  zmq::context_t ctx;
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  std::mutex mu;
  std::vector<std::string> lines;
  {
    worker::HandshakeMonitor monitor(ctx.handle(), sock.handle(), endpoint, "", [&](const std::string& l) {
      std::lock_guard<std::mutex> lock(mu);
      lines.push_back(l);
    });
    sock.connect(endpoint);
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!lines.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  done = true;
  http.join();
  ::close(server);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(lines.empty()) << "no handshake failure was logged";
  EXPECT_NE(lines.front().find("workers connect to the coordinator's --listen port (7700), not its --http one"),
            std::string::npos)
      << lines.front();
}

TEST_F(ZapTest, AClientWithoutCurveIsRefused) {
  auto plain = Client("plain", nullptr);
  plain->connect(endpoint_);
  EXPECT_EQ(Exchange(*plain, 1000), "");
}

TEST_F(ZapTest, AKeyAddedToTheFileIsAdmittedWithoutARestartAndARemovedOneIsLockedOut) {
  auto c = Client("late", &stranger_);
  c->connect(endpoint_);
  EXPECT_EQ(Exchange(*c, 800), "");
  // Append the stranger's key, as `hpo keygen --worker` would (atomic rewrite).
  auto text = *ReadFile(dir_.path() + "/authorized_workers");
  ASSERT_TRUE(WriteFileAtomically(dir_.path() + "/authorized_workers", text + stranger_.public_key + " late\n").ok());
  // libzmq gives up on a socket whose handshake was refused; the worker agent connects a fresh
  // one when its coordinator has been silent for its lease, as this does.
  c = Client("late", &stranger_);
  c->connect(endpoint_);
  EXPECT_EQ(Exchange(*c, 5000), "late") << "a new connection is admitted once the list holds its key";
  EXPECT_GE(zap_->reloads(), 1u);
  EXPECT_EQ(zap_->allowed(), 2u);
  // Remove the original worker: its next connection is refused.
  ASSERT_TRUE(WriteFileAtomically(dir_.path() + "/authorized_workers", stranger_.public_key + " late\n").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(zap_->allowed(), 1u);
  auto g = Client("good", &good_);
  g->connect(endpoint_);
  EXPECT_EQ(Exchange(*g, 1000), "");
}

// A connection made before its key left the list stays open (ZeroMQ checks keys at the handshake
// only); its messages carry the key as User-Id, which Allows then refuses, so the dispatcher
// drops them from the reload on.
TEST_F(ZapTest, AConnectedWorkersKeyRemovedFromTheListIsNoLongerAllowed) {
  auto c = Client("good", &good_);
  c->connect(endpoint_);
  auto user_id = [&]() -> std::string {
    for (int i = 0; i < 60; ++i) {
      (void)c->send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t id, body;
      (void)router_.recv(id);
      (void)router_.recv(body);
      return body.gets("User-Id");
    }
    return "";
  };
  const std::string key = user_id();
  EXPECT_EQ(key, good_.public_key) << "the handler names the connection by its key";
  EXPECT_TRUE(zap_->Allows(key));
  EXPECT_FALSE(zap_->Allows(stranger_.public_key));
  ASSERT_TRUE(WriteFileAtomically(dir_.path() + "/authorized_workers", stranger_.public_key + " other\n").ok());
  zap_->RequestReload();
  for (int i = 0; i < 40 && zap_->Allows(key); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(zap_->Allows(key)) << "revoked";
  EXPECT_EQ(user_id(), good_.public_key) << "the old connection still delivers: the dispatcher must drop it";
}

TEST_F(ZapTest, ABrokenAllowListKeepsThePreviousOneAndSaysWhy) {
  ASSERT_TRUE(WriteFileAtomically(dir_.path() + "/authorized_workers", "garbage line\n").ok());
  zap_->RequestReload();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(Logged("keeping the previous worker allow-list"));
  EXPECT_EQ(zap_->allowed(), 1u);
  auto c = Client("good", &good_);
  c->connect(endpoint_);
  EXPECT_EQ(Exchange(*c, 3000), "good");
}

TEST_F(ZapTest, SighupReloadsEvenWhenTheFileLooksUnchanged) {
  uint64_t before = zap_->reloads();
  zap_->RequestReload();
  for (int i = 0; i < 50 && zap_->reloads() == before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(zap_->reloads(), before + 1);
  EXPECT_TRUE(Logged("reloaded (SIGHUP)"));
}

TEST(ZapHandlerStart, AMissingAllowListIsAnError) {
  zmq::context_t ctx;
  auto z = ZapHandler::Start(ctx.handle(), "/nonexistent/authorized_workers", nullptr);
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.status().message().find("/nonexistent/authorized_workers"), std::string::npos);
}

}  // namespace
}  // namespace hpo::coordinator::curve
