// NoticeUrl against a local HTTP server playing the EC2 and GCE metadata endpoints.
#include "worker/spot_notice.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace hpo::worker {
namespace {

class NoticeUrlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/latest/meta-data/spot/instance-action", [this](const httplib::Request& req, httplib::Response& res) {
      if (imdsv2_ && req.get_header_value("X-aws-ec2-metadata-token") != "tok-1") {
        res.status = 401;
        return;
      }
      if (!noticed_) {
        res.status = 404;
        return;
      }
      res.set_content(R"({"action": "terminate", "time": "2026-11-29T10:00:00Z"})", "application/json");
    });
    server_.Put("/latest/api/token", [this](const httplib::Request& req, httplib::Response& res) {
      ++token_requests_;
      if (req.get_header_value("X-aws-ec2-metadata-token-ttl-seconds").empty()) {
        res.status = 400;
        return;
      }
      res.set_content("tok-1", "text/plain");
    });
    server_.Get("/computeMetadata/v1/instance/preempted", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Metadata-Flavor") != "Google") {
        res.status = 403;
        return;
      }
      res.set_content(noticed_ ? "TRUE" : "FALSE\n", "text/plain");
    });
    server_.Get("/broken", [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> noticed_{false}, imdsv2_{false};
  std::atomic<int> token_requests_{0};
};

TEST_F(NoticeUrlTest, Ec2AnswersNotFoundUntilANoticeThenTheNoticeDocument) {
  NoticeUrl url(Url("/latest/meta-data/spot/instance-action"));
  auto none = url.Poll();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, "");
  noticed_ = true;
  auto notice = url.Poll();
  ASSERT_TRUE(notice.ok()) << notice.status().ToString();
  EXPECT_NE(notice->find("terminate"), std::string::npos) << *notice;
}

TEST_F(NoticeUrlTest, AnImdsv2EndpointGetsASessionTokenFirst) {
  imdsv2_ = true;
  NoticeUrl url(Url("/latest/meta-data/spot/instance-action"));
  auto none = url.Poll();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, "");
  EXPECT_EQ(token_requests_.load(), 1);
  noticed_ = true;
  auto notice = url.Poll();
  ASSERT_TRUE(notice.ok());
  EXPECT_FALSE(notice->empty());
  EXPECT_EQ(token_requests_.load(), 1) << "the token is kept";
}

TEST_F(NoticeUrlTest, GceSaysFalseThenTrue) {
  NoticeUrl url(Url("/computeMetadata/v1/instance/preempted"));
  auto none = url.Poll();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, "");
  noticed_ = true;
  auto notice = url.Poll();
  ASSERT_TRUE(notice.ok());
  EXPECT_EQ(*notice, "TRUE");
}

TEST_F(NoticeUrlTest, AnErrorOrNoAnswerIsAnErrorNeverANotice) {
  auto broken = NoticeUrl(Url("/broken")).Poll();
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("answered HTTP 500"), std::string::npos) << broken.status().message();
  auto refused = NoticeUrl("http://127.0.0.1:1/latest/meta-data/spot/instance-action", 500).Poll();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("spot notice URL http://127.0.0.1:1/"), std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace hpo::worker
