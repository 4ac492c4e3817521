// The web dashboard's pages, rendered from a real coordinator core through the same handlers the
// HTTP API serves (InProcessSource): what a person sees for jobs, training jobs, charts and logs,
// that every text from a spec, a trainer or a log is escaped, and that bad paths and failing
// sources give error pages rather than exceptions.

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>

#include "common/text.h"
#include <httplib.h>
#include <thread>

#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "coordinator/dashboard.h"
#include "coordinator/dispatcher.h"
#include "coordinator/http_api.h"
#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator {
namespace {

using coretest::Only;
using dashboard::Json;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
  return n;
}

// An attribute (fill, cy, ...) of a training job's point on a chart of `page`; "no point" when it
// has none.
std::string PointAttribute(const std::string& page, const std::string& trial, const std::string& attribute) {
  const size_t at = page.find("<a href=\"/ui/trials/" + trial + "\"><circle class=\"pt\"");
  if (at == std::string::npos) return "no point";
  const size_t f = page.find(attribute + "=\"", at) + attribute.size() + 2;
  return page.substr(f, page.find('"', f) - f);
}

class DashboardTest : public coretest::CoreTest {
 protected:
  void SetUp() override {
    CoreTest::SetUp();
    DispatcherOptions o;
    o.listen = "tcp://127.0.0.1:*";
    o.now_ms = [this] { return now_; };
    o.log = [](const std::string&) {};
    dispatcher_ = std::make_unique<Dispatcher>(core_.get(), o);
    source_ = std::make_unique<InProcessSource>(*dispatcher_);
  }
  void TearDown() override {
    source_.reset();
    dispatcher_.reset();
  }
  dashboard::Page Get(const std::string& path, std::map<std::string, std::string> query = {}) {
    return dashboard::Render(*source_, path, query);
  }
  // The SVG of the chart of one numeric range added to a Random job of 4 training jobs (losses 0.1
  // to 0.4), found by its x-axis title; "" (and a test failure) when there is none.
  std::string RangeChart(const std::string& job, const proto::NumericRange& range, const std::string& title) {
    Register("w1", 4);
    proto::TuningJobSpec spec = coretest::Spec(job, "Random", 4, 4);
    spec.hyper_parameter_tuning_job_config->parameter_ranges->continuous_parameter_ranges.push_back(range);
    auto assigns = Only<proto::wire::AssignTrial>(Submit(spec));
    EXPECT_EQ(assigns.size(), 4u);
    for (size_t i = 0; i < assigns.size(); ++i) Finish("w1", assigns[i], 0.1 * (i + 1));
    const std::string b = Get("/ui/jobs/" + job).body;
    const size_t chart = b.find(">" + title + "<");
    EXPECT_NE(chart, std::string::npos) << "the chart names its scale: " << title;
    if (chart == std::string::npos) return "";
    const size_t start = b.rfind("<svg", chart);
    return b.substr(start, b.find("</svg>", chart) - start);
  }
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<InProcessSource> source_;
};

TEST_F(DashboardTest, TheJobsPageListsEveryJobWithItsStatusProgressAndBest) {
  Register("w1", 4);
  auto first = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("alpha", "Random", 4, 2)));
  ASSERT_EQ(first.size(), 2u);
  Finish("w1", first[0], 0.25);

  dashboard::Page p = Get("/ui/");
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.content_type, "text/html; charset=utf-8");
  EXPECT_NE(p.body.find("<a href=\"/ui/jobs/alpha\">alpha</a>"), std::string::npos);
  EXPECT_NE(p.body.find("st-run\">InProgress<"), std::string::npos) << "a running job's status badge";
  EXPECT_NE(p.body.find("1 / 4"), std::string::npos) << "one of four training jobs ended";
  EXPECT_NE(p.body.find(">0.25<"), std::string::npos) << "the best objective so far";
  EXPECT_NE(p.body.find("http-equiv=\"refresh\""), std::string::npos) << "a running job: the list refreshes";

  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Stop("alpha", now_, &out).ok());
  EXPECT_NE(Get("/ui/").body.find("Stopping"), std::string::npos);
}

TEST_F(DashboardTest, AnEmptyCoordinatorSaysHowToSubmitAndTheRootRedirects) {
  dashboard::Page p = Get("/ui/");
  EXPECT_EQ(p.status, 200);
  EXPECT_NE(p.body.find("No tuning jobs yet"), std::string::npos);
  EXPECT_EQ(p.body.find("http-equiv=\"refresh\""), std::string::npos) << "nothing runs: no refresh";
  for (const char* path : {"/", "/ui"}) {
    dashboard::Page r = Get(path);
    EXPECT_EQ(r.status, 302) << path;
    EXPECT_EQ(r.location, "/ui/") << path;
  }
}

TEST_F(DashboardTest, AJobPageDrawsEveryObjectiveTheBestSoFarAndEachHyperparameter) {
  Register("w1", 4);
  std::vector<proto::wire::AssignTrial> queue = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("beta", "Random", 6, 2)));
  std::vector<double> losses = {0.9, 0.4, 0.7, 0.2, 0.8, 0.5};
  std::string best;
  size_t done = 0;
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    if (losses[done] == 0.2) best = a.trial;
    // Three emissions each, so the learning curves chart has lines.
    Emit("w1", a, {losses[done] + 2, losses[done] + 1, losses[done]});
    for (auto& m : Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"))) queue.push_back(m);
    ++done;
  }
  ASSERT_EQ(done, 6u);

  dashboard::Page p = Get("/ui/jobs/beta");
  ASSERT_EQ(p.status, 200) << p.body;
  const std::string& b = p.body;
  EXPECT_NE(b.find("st-ok\">Completed<"), std::string::npos);
  EXPECT_EQ(b.find("http-equiv=\"refresh\""), std::string::npos) << "an ended job's page does not reload";
  EXPECT_NE(b.find("Best training job: <a href=\"/ui/trials/" + best + "\">"), std::string::npos);
  // The objective chart: one point per training job, plus one per job on each of the two
  // hyperparameters' charts (opt, act): 6 x 3.
  EXPECT_EQ(Count(b, "class=\"pt\""), 18u);
  EXPECT_EQ(Count(b, "class=\"best-so-far\""), 1u);
  EXPECT_EQ(Count(b, "class=\"curve\""), 6u) << "one learning curve per training job";
  EXPECT_EQ(Count(b, "class=\"pc\""), 6u) << "one line per training job across the parallel axes";
  size_t parallel = b.find("class=\"parallel\"");
  ASSERT_NE(parallel, std::string::npos);
  // The best training job's line is green and drawn last (on top).
  size_t last_line = b.rfind("class=\"pc\"", b.find("</svg>", parallel));
  EXPECT_NE(b.substr(b.rfind("<a href", last_line), last_line - b.rfind("<a href", last_line)).find(best),
            std::string::npos);
  EXPECT_NE(b.find("stroke=\"#23912f\" stroke-width=\"3\"", last_line), std::string::npos);
  EXPECT_NE(b.find("<text class=\"title\" x=\"58\" y=\"18\">opt</text>"), std::string::npos);
  EXPECT_NE(b.find(">rmsprop<"), std::string::npos) << "a categorical axis names its values";
  // The table is sorted best first, and the best row is marked.
  size_t row_best = b.find("<tr class=\"best\">");
  ASSERT_NE(row_best, std::string::npos);
  EXPECT_LT(b.find(best, row_best), b.find("</tr>", row_best));
  EXPECT_LT(b.find(">0.2<", b.find("id=\"trials\"")), b.find(">0.4<", b.find("id=\"trials\"")));
  // ... or by number on request.
  std::string by_number = Get("/ui/jobs/beta", {{"sort", "number"}}).body;
  EXPECT_LT(by_number.find(">0.9<", by_number.find("id=\"trials\"")),
            by_number.find(">0.2<", by_number.find("id=\"trials\"")));
  // A training job's page draws its own curve only.
  EXPECT_EQ(Count(Get("/ui/trials/" + best).body, "class=\"curve\""), 1u);
  // The events table: the job's completion is among the latest.
  EXPECT_NE(b.find("id=\"events\""), std::string::npos);
  EXPECT_NE(b.find(">JobCompleted<"), std::string::npos);
  // Numbers are never split across lines, nor status badges (a dashboard pass read 20521.2 as
  // "2052" over "1.2" in a narrow window); words are not cut in headers.
  EXPECT_NE(b.find("td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;overflow-wrap:normal}"),
            std::string::npos);
  EXPECT_NE(b.find("font-weight:600;white-space:nowrap}"), std::string::npos) << "badges";
  EXPECT_NE(b.find("th{background:#eef0f3;font-weight:600;overflow-wrap:normal}"), std::string::npos);
  EXPECT_NE(b.find("<td class=\"num\">0.2</td>"), std::string::npos) << "the objective, right-aligned";
}

// What mattered: from 8 ended training jobs with an objective, a bar per hyperparameter, the one
// the loss depends on first; a job with fewer has no such section.
TEST_F(DashboardTest, AJobPageShowsWhichHyperparametersMatteredOnceEnoughTrainingJobsEnded) {
  Register("w1", 4);
  std::vector<proto::wire::AssignTrial> queue =
      Only<proto::wire::AssignTrial>(Submit(coretest::Spec("gamma", "Random", 12, 3)));
  size_t done = 0;
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    // The loss is the optimizer's alone; the activation does nothing.
    const std::string opt = a.hyperparameters.at("opt");
    const double loss = opt == "sgd" ? 0.9 : opt == "adam" ? 0.1 : 0.5;
    Emit("w1", a, {loss});
    for (auto& m : Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"))) queue.push_back(m);
    ++done;
  }
  ASSERT_GE(done, 8u);
  const std::string b = Get("/ui/jobs/gamma").body;
  const size_t at = b.find("<h2>What mattered</h2>");
  ASSERT_NE(at, std::string::npos) << b;
  const size_t svg = b.find("class=\"importance\"", at);
  ASSERT_NE(svg, std::string::npos);
  const std::string chart = b.substr(svg, b.find("</svg>", svg) - svg);
  EXPECT_NE(chart.find("(a model of " + std::to_string(done) + " training jobs)"), std::string::npos) << chart;
  // Wide enough for its title (it was cut off at "(a model of 12 training job").
  const size_t w = chart.find("width=\"");
  ASSERT_NE(w, std::string::npos);
  const size_t title_at = chart.find("<text class=\"title\""), title_end = chart.find("</text>", title_at);
  const size_t title_chars = title_end - chart.find('>', title_at) - 1;
  EXPECT_GE(std::stoi(chart.substr(w + 7)), static_cast<int>(title_chars * 7)) << chart.substr(0, 300);
  const size_t opt = chart.find(">opt<title>"), act = chart.find(">act<title>");
  ASSERT_NE(opt, std::string::npos) << chart;
  ASSERT_NE(act, std::string::npos) << chart;
  EXPECT_LT(opt, act) << "most important first";
  EXPECT_NE(chart.find("0 % alone, 0 % with interactions", act), std::string::npos) << chart;

  // Six training jobs: no estimate, no section.
  queue = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("delta", "Random", 6, 2)));
  for (double loss = 0.5; !queue.empty(); loss += 0.1) {
    auto a = queue.front();
    queue.erase(queue.begin());
    Emit("w1", a, {loss});
    for (auto& m : Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"))) queue.push_back(m);
  }
  const std::string small = Get("/ui/jobs/delta").body;
  EXPECT_NE(small.find("st-ok\">Completed<"), std::string::npos) << small;
  EXPECT_EQ(small.find("What mattered"), std::string::npos);
}

// The best-so-far line went through a running training job's latest value, which it may never
// end with: here 0.1, below the 0.5 the one ended job has. The line follows ended jobs only, and
// is not drawn while every job with a value still runs.
// The importance fit of a job page ran OpenMP teams on the server's thread, and each of its 128
// pool threads kept a team of (cores - 1) idle threads: a coordinator's threads and memory grew
// with every page viewed (263 threads on 2 cores; a scale pass). Three long-lived threads each
// draw a big job's page and stay: no thread of theirs is left behind them.
TEST_F(DashboardTest, DrawingAJobPageLeavesNoThreadsBehindOnTheServersThread) {
  Register("w1", 64);
  std::vector<proto::wire::AssignTrial> queue =
      Only<proto::wire::AssignTrial>(Submit(coretest::Spec("big", "Random", 400, 64)));
  for (size_t i = 0; !queue.empty(); ++i) {
    auto a = queue.front();
    queue.erase(queue.begin());
    Emit("w1", a, {0.001 * static_cast<double>(i % 97)});
    for (auto& m : Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"))) queue.push_back(m);
  }
  auto threads = [] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
  };
  ASSERT_NE(Get("/ui/jobs/big").body.find("<h2>What mattered</h2>"), std::string::npos);  // (its team, if any, here)
  const size_t before = threads();
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  size_t drawn = 0;
  std::vector<std::thread> pool;
  for (int k = 0; k < 3; ++k) {
    pool.emplace_back([&] {
      const std::string body = Get("/ui/jobs/big").body;
      std::unique_lock<std::mutex> lock(mu);
      drawn += body.find("<h2>What mattered</h2>") != std::string::npos;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    });
  }
  size_t during = 0;
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return drawn == 3 || release; });
    during = threads();
    release = true;
    cv.notify_all();
  }
  for (auto& t : pool) t.join();
  EXPECT_EQ(drawn, 3u);
  EXPECT_LE(during, before + 3) << "the three drawing threads and nothing more";
}

TEST_F(DashboardTest, TheBestSoFarLineFollowsEndedTrainingJobsOnly) {
  Register("w1", 4);
  auto assigns = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("line", "Random", 2, 2)));
  ASSERT_EQ(assigns.size(), 2u);
  Emit("w1", assigns[1], {0.1});  // still running
  EXPECT_EQ(Get("/ui/jobs/line").body.find("class=\"best-so-far\""), std::string::npos) << "nothing has ended";
  Emit("w1", assigns[0], {0.5});
  Exit("w1", assigns[0], "Completed");
  const std::string b = Get("/ui/jobs/line").body;
  const std::string ended = PointAttribute(b, assigns[0].trial, "cy"),
                    running = PointAttribute(b, assigns[1].trial, "cy");
  ASSERT_NE(ended, "no point");
  ASSERT_NE(running, "no point") << "the running job's latest value is drawn";
  ASSERT_NE(ended, running);
  const size_t path = b.find("class=\"best-so-far\" d=\"");
  ASSERT_NE(path, std::string::npos);
  const size_t d0 = b.find("d=\"", path) + 3;
  std::stringstream steps(b.substr(d0, b.find('"', d0) - d0));
  std::string op, y;
  int points = 0;
  while (steps >> op >> y) {  // "M12.0 34.5" "L56.0 34.5": the command and x run together
    EXPECT_EQ(y, ended) << "the line reaches the running job's value: " << b.substr(d0, 200);
    ++points;
  }
  EXPECT_GE(points, 2);
}

// Tied objectives name one best everywhere: the one that ended first (Describe, also after a
// restart; the table's first row; compare's best and its time), and a running job's latest value,
// better than every ended one, is listed after them as "so far" and drawn gray (a dashboard pass:
// the table and compare named another tied job, and a running one ranked first).
TEST_F(DashboardTest, TiedObjectivesNameOneBestEverywhereAndARunningValueIsNotRankedAsFinal) {
  Register("w1", 4);
  proto::TuningJobSpec spec = coretest::Spec("tie", "Random", 3, 3);
  spec.hyper_parameter_tuning_job_config->parameter_ranges->continuous_parameter_ranges.push_back(
      {"y", "0", "1", "Linear"});
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 3u);
  now_ += 1000;
  Finish("w1", a[1], 0.5);  // the second created ends first
  now_ += 1000;
  Finish("w1", a[0], 0.5);
  Emit("w1", a[2], {0.1});  // still running, better so far
  auto best = [&] { return core_->Describe("tie")->status.best_training_job->training_job_name.value_or(""); };
  EXPECT_EQ(best(), a[1].trial);
  const std::string b = Get("/ui/jobs/tie").body;
  const size_t table = b.find("<table id=\"trials\">");
  ASSERT_NE(table, std::string::npos);
  const size_t first = b.find(a[1].trial, table), second = b.find(a[0].trial, table), third = b.find(a[2].trial, table);
  EXPECT_LT(first, second) << "the best, which ended first, is the first row";
  EXPECT_LT(second, third) << "the running one after the ended ones";
  EXPECT_NE(b.find("0.1 so far</span>", third), std::string::npos);
  EXPECT_NE(b.find("<tr class=\"best\"><td class=\"num\">2</td>"), std::string::npos);
  EXPECT_NE(b.find(a[2].trial + ": loss 0.1 (running: its latest value)"), std::string::npos);
  auto cmp = dashboard::Compare({{source_.get(), "tie", ""}}, 0, now_ / 1000.0);
  ASSERT_TRUE(cmp.ok()) << cmp.status().ToString();
  EXPECT_EQ((*cmp)["Jobs"][0]["BestTrainingJob"], a[1].trial) << cmp->dump();
  MakeCore();
  EXPECT_EQ(best(), a[1].trial) << "the same after a restart";
}

// A usability pass: a training job that reported its objective and then failed, and one still
// running, were drawn as blue "completed" dots. Each status has its colour, and the legend says so.
// A failed one has no final objective (as on SageMaker; it was ranked among the best), so it has
// no point: its learning curve is red.
TEST_F(DashboardTest, FailedAndRunningTrainingJobsAreDrawnApartFromCompletedOnes) {
  Register("w1", 4);
  auto assigns = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("colours", "Random", 3, 3)));
  ASSERT_EQ(assigns.size(), 3u);
  Emit("w1", assigns[0], {0.5});
  Exit("w1", assigns[0], "Completed");
  Emit("w1", assigns[1], {0.3});
  Exit("w1", assigns[1], "Failed");
  Emit("w1", assigns[2], {0.4});  // still running
  const std::string b = Get("/ui/jobs/colours").body;
  auto fill = [&](const std::string& trial) { return PointAttribute(b, trial, "fill"); };
  EXPECT_EQ(fill(assigns[0].trial), "#1f6fb4") << "completed: blue";
  EXPECT_EQ(fill(assigns[1].trial), "no point") << "failed: no final objective";
  EXPECT_EQ(fill(assigns[2].trial), "#8a9099") << "running: gray";
  EXPECT_NE(b.find("failed (its curve; no final objective)"), std::string::npos);
  EXPECT_NE(b.find("running (its latest value)"), std::string::npos);
  EXPECT_NE(b.find("<code>hpo events colours</code>"), std::string::npos) << "the default coordinator's";
  // Pages of a state directory (hpo dashboard --state-dir, hpo run --dashboard) suggest commands
  // that read it: without the flag they asked the default coordinator, which knows nothing of it.
  dashboard::PageOptions o;
  o.cli_flags = " --state-dir runs/colours";
  const std::string local = dashboard::Render(*source_, "/ui/jobs/colours", {}, o).body;
  EXPECT_NE(local.find("<code>hpo events colours --state-dir runs/colours</code>"), std::string::npos);
  const std::string trial = dashboard::Render(*source_, "/ui/trials/" + assigns[2].trial, {}, o).body;
  EXPECT_NE(trial.find("<code>hpo logs " + assigns[2].trial + " --state-dir runs/colours -f</code>"),
            std::string::npos);
}

// A training job stopped at its first report has a curve of one value, which a polyline does not
// draw: it is a dot in its colour (a monitoring pass found the jobs early stopping cut soonest
// missing from the learning curves).
TEST_F(DashboardTest, ALearningCurveOfOneValueIsDrawnAsADot) {
  Register("w1", 4);
  auto a = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("dots", "Random", 3, 3)));
  ASSERT_EQ(a.size(), 3u);
  Emit("w1", a[0], {0.9, 0.7, 0.5});
  Exit("w1", a[0], "Completed");
  Emit("w1", a[1], {0.95});
  Exit("w1", a[1], "Stopped");
  Emit("w1", a[2], {0.8, 0.6});
  Exit("w1", a[2], "Completed");
  const std::string b = Get("/ui/jobs/dots").body;
  EXPECT_EQ(Count(b, "class=\"curve\""), 3u) << b;
  ASSERT_EQ(Count(b, "class=\"curve-point\""), 1u) << b;
  const size_t dot = b.find("class=\"curve-point\"");
  const size_t link = b.rfind("<a href=", dot);
  ASSERT_NE(link, std::string::npos);
  EXPECT_EQ(b.substr(link, b.find('>', link) - link), "<a href=\"/ui/trials/" + a[1].trial + "\"")
      << "the dot is the one-value training job's";
}

// A dashboard pass: a ReverseLogarithmic momentum 0.5 to 0.999 was drawn on a linear axis, the
// values from 0.92 on piled at its end. Each decade of 1 - v takes the same room, ticked at
// 0.9, 0.99, ...
TEST_F(DashboardTest, AReverseLogarithmicRangeIsDrawnOnAReverseLogAxis) {
  const std::string svg =
      RangeChart("delta", {"momentum", "0.5", "0.999", "ReverseLogarithmic"}, "momentum (reverse log scale)");
  for (const char* tick : {">0.9<", ">0.99<", ">0.999<"}) EXPECT_NE(svg.find(tick), std::string::npos) << tick << svg;
  EXPECT_EQ(svg.find("nan"), std::string::npos) << svg;
}

TEST_F(DashboardTest, ALogarithmicRangeIsDrawnOnALogAxisWithDecadeTicks) {
  const std::string svg = RangeChart("gamma", {"lr", "0.00001", "0.1", "Logarithmic"}, "lr (log scale)");
  for (const char* tick : {">1e-05<", ">0.0001<", ">0.001<", ">0.01<", ">0.1<"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick << " in\n" << svg;
  }
  EXPECT_EQ(Count(svg, "class=\"pt\""), 4u);
}

TEST_F(DashboardTest, TextFromTrainersLogsAndSpecsIsEscapedEverywhere) {
  Register("w1", 4);
  proto::TuningJobSpec spec = coretest::Spec("delta", "Random", 2, 2);
  spec.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges[0].values = {
      "<script>alert(1)</script>", "a&b"};
  auto assigns = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(assigns.size(), 2u);
  Log("w1", assigns[0], {"epoch 1 <img src=x onerror=alert(2)>", "loss=0.5 & \"quoted\""});
  Finish("w1", assigns[0], 0.5);
  proto::wire::TrialExited x;
  x.trial = assigns[1].trial;
  x.attempt = assigns[1].attempt;
  x.status = "Failed";
  x.secondary_status = "Failed";
  x.exit_code = 1;
  x.failure_reason = "AlgorithmError: <script>alert(3)</script>";
  Started("w1", assigns[1]);
  core_->OnMessage("w1", x, now_);

  for (const std::string& path : {std::string("/ui/"), std::string("/ui/jobs/delta"), "/ui/trials/" + assigns[0].trial,
                                  "/ui/trials/" + assigns[1].trial}) {
    dashboard::Page p = Get(path);
    ASSERT_EQ(p.status, 200) << path;
    EXPECT_EQ(p.body.find("<script"), std::string::npos) << path;
    EXPECT_EQ(p.body.find("<img"), std::string::npos) << path;
  }
  std::string job = Get("/ui/jobs/delta").body;
  EXPECT_NE(job.find("AlgorithmError: &lt;script&gt;alert(3)&lt;/script&gt;"), std::string::npos);
  std::string trial = Get("/ui/trials/" + assigns[0].trial).body;
  EXPECT_NE(trial.find("epoch 1 &lt;img src=x onerror=alert(2)&gt;"), std::string::npos);
  EXPECT_NE(trial.find("loss=0.5 &amp; &quot;quoted&quot;"), std::string::npos);
  EXPECT_NE(trial.find("2 lines"), std::string::npos);
}

// Labels were cut by bytes: a categorical value of accented or CJK characters was cut inside a
// character, and the page (served as UTF-8) was not UTF-8 (Chromium showed U+FFFD).
TEST_F(DashboardTest, LabelsAreCutBetweenCharactersAndThePageIsUtf8) {
  Register("w1", 4);
  proto::TuningJobSpec spec = coretest::Spec("utf", "Random", 2, 2);
  spec.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges[0].values = {
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\xe3\x81\xa7"
      "\xe3\x81\x99\xe3\x81\xad\xe3\x80\x82\xe9\x95\xb7\xe3\x81\x84"};
  auto assigns = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(assigns.size(), 2u);
  Finish("w1", assigns[0], 0.5);
  Finish("w1", assigns[1], 0.25);
  const std::string page = Get("/ui/jobs/utf").body;
  EXPECT_EQ(InvalidUtf8At(page), std::nullopt) << "the page is not UTF-8";
  // Cut to 11 characters and "~".
  EXPECT_NE(page.find("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9~"),
            std::string::npos);
}

TEST_F(DashboardTest, ATrainingJobPageShowsItsHistoryHyperparametersMetricsAndTheLogsTail) {
  Register("w1", 4);
  auto assigns = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("eps", "Random", 2, 1)));
  ASSERT_EQ(assigns.size(), 1u);
  const auto& a = assigns[0];
  std::vector<std::string> lines;
  for (int i = 0; i < 250; ++i) lines.push_back("line " + std::to_string(i));
  Log("w1", a, lines);
  Emit("w1", a, {0.75});
  dashboard::Page running = Get("/ui/trials/" + a.trial);
  ASSERT_EQ(running.status, 200);
  EXPECT_NE(running.body.find("http-equiv=\"refresh\""), std::string::npos) << "a running training job's page reloads";
  Exit("w1", a, "Completed");

  dashboard::Page p = Get("/ui/trials/" + a.trial);
  ASSERT_EQ(p.status, 200);
  const std::string& b = p.body;
  EXPECT_NE(b.find("<a href=\"/ui/jobs/eps\">eps</a>"), std::string::npos) << "a link back to the tuning job";
  EXPECT_NE(b.find(">_tuning_objective_metric<"), std::string::npos);
  EXPECT_NE(b.find(">epochs<"), std::string::npos);
  EXPECT_NE(b.find(">0.75<"), std::string::npos) << "the final metric";
  EXPECT_NE(b.find("the last 200 of 250 lines"), std::string::npos);
  // Training and billable time in whole seconds, said so (it read "3.0s" beside the job table's
  // 2.2s, a precision that is not there).
  const size_t tt = b.find(" &middot; training time ");
  ASSERT_NE(tt, std::string::npos) << b;
  const std::string times = b.substr(tt, b.find("</p>", tt) - tt);
  EXPECT_NE(times.find(" (whole seconds)"), std::string::npos) << times;
  EXPECT_EQ(times.find(".0s"), std::string::npos) << times;
  EXPECT_EQ(b.find("line 49\n"), std::string::npos) << "older lines are left out";
  EXPECT_NE(b.find("line 50\n"), std::string::npos);
  EXPECT_NE(b.find("line 249\n"), std::string::npos);
  EXPECT_NE(b.find("hpo logs " + a.trial + " -f"), std::string::npos);
  EXPECT_EQ(b.find("http-equiv=\"refresh\""), std::string::npos);
}

// A training job interrupted and resumed elsewhere: its page's curve has every attempt's values,
// with where the second began marked, and its log tail heads each attempt's lines (it showed only
// the last attempt's curve, under an axis that said epochs).
TEST_F(DashboardTest, AResumedTrainingJobsPageShowsEveryAttemptsCurveAndLog) {
  Register("w1", 1);
  Register("w2", 1);
  auto assigns = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("resumed", "Random", 1, 1)));
  ASSERT_EQ(assigns.size(), 1u);
  const auto a = assigns[0];
  const std::string first = core_->FindTrial(a.trial)->worker_id;
  Log(first, a, {"epoch 1", "epoch 2", "epoch 3"});
  Emit(first, a, {0.9, 0.8, 0.7});
  auto again = Only<proto::wire::AssignTrial>(EndWith(first, a.trial, a.attempt, "Interrupted", "spot interruption"));
  ASSERT_EQ(again.size(), 1u);
  const auto& b = again[0];
  ASSERT_EQ(b.attempt, 2u);
  const std::string second = core_->FindTrial(a.trial)->worker_id;
  Log(second, b, {"resumed from epoch 3", "epoch 4"});
  Emit(second, b, {0.6, 0.5});
  Exit(second, b, "Completed");
  dashboard::Page p = Get("/ui/trials/" + a.trial);
  ASSERT_EQ(p.status, 200);
  EXPECT_NE(p.body.find("(Completed, 5 values)"), std::string::npos) << "every attempt's values";
  EXPECT_NE(p.body.find("attempt 2 begins"), std::string::npos) << p.body;
  EXPECT_NE(p.body.find("epoch 3\n---- attempt 2 ----\nresumed from epoch 3\n"), std::string::npos) << p.body;
}

// A two-host training job's log tail tags each line with its host, and counts what it read (the
// line numbers are each host's own).
TEST_F(DashboardTest, AMultiHostTrainingJobsLogTailNamesEachLinesHost) {
  Register("w1", 1);
  Register("w2", 1);
  proto::TuningJobSpec spec = coretest::Spec("pair", "Random", 1, 1);
  spec.training_job_definition->resource_config->instance_count = 2;
  auto out = Submit(spec);
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 2u);
  for (const auto& o : out) {
    const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message);
    if (a) Log(o.worker_id, *a, {"hello from " + a->current_host, "bye from " + a->current_host});
  }
  dashboard::Page p = Get("/ui/trials/" + assigns[0].trial);
  ASSERT_EQ(p.status, 200);
  EXPECT_NE(p.body.find("[algo-1] hello from algo-1\n"), std::string::npos) << p.body;
  EXPECT_NE(p.body.find("[algo-2] bye from algo-2\n"), std::string::npos);
  EXPECT_NE(p.body.find(">4 lines"), std::string::npos) << "4 lines, not the 2 of one host's numbers";
}

// The workers page: each worker's state and why, its slots in use, GPUs, disk; a cordoned id
// that is not registered too; the jobs page links to it.
TEST_F(DashboardTest, TheWorkersPageShowsEachWorkersStateLoadAndCordons) {
  EXPECT_NE(Get("/ui/workers").body.find("No worker has registered"), std::string::npos);
  RegisterGpuWorker("gpu-1", 2, 2);
  proto::wire::Register r = Registration("cpu-1", 4);
  r.disk_mb = 200 * 1024;
  core_->OnMessage("cpu-1", r, now_);
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Cordon("cpu-1", "fan <replacement>", now_, &out).ok());
  ASSERT_TRUE(core_->Cordon("later-1", "", now_, &out).ok());
  Submit(coretest::Spec("wk", "Random", 6, 2));
  dashboard::Page p = Get("/ui/workers");
  EXPECT_EQ(p.status, 200);
  EXPECT_NE(p.body.find("2 worker(s), 1 open; 2 of 6 slots running training jobs."), std::string::npos)
      << "a cordoned id with no worker is not a worker: " << p.body;
  EXPECT_NE(p.body.find("gpu-1"), std::string::npos);
  EXPECT_NE(p.body.find("0 / 2 NVIDIA H200"), std::string::npos) << "CPU training jobs hold no GPU: " << p.body;
  EXPECT_NE(p.body.find("200 GiB"), std::string::npos);
  EXPECT_NE(p.body.find("fan &lt;replacement&gt;"), std::string::npos) << "escaped: " << p.body;
  EXPECT_NE(p.body.find("later-1"), std::string::npos);
  EXPECT_NE(p.body.find("not registered"), std::string::npos);
  EXPECT_NE(p.body.find("hpo workers drain ID"), std::string::npos);
  EXPECT_NE(Get("/ui/").body.find("href=\"/ui/workers\""), std::string::npos);
  // Silent past its lease: listed as lost, with when it was last heard, not dropped.
  core_->OnMessage("spare-1", Registration("spare-1", 1), now_);
  now_ += options_.lease_ms + 1000;
  Heartbeat("gpu-1", {});
  Heartbeat("cpu-1", {});
  core_->OnTick(now_);
  p = Get("/ui/workers");
  EXPECT_NE(p.body.find(">Lost</span>"), std::string::npos) << p.body;
  EXPECT_NE(p.body.find("last heard " + std::to_string(options_.lease_ms / 1000 + 1) + " s ago"), std::string::npos)
      << p.body;
  EXPECT_NE(p.body.find("1 lost or gone"), std::string::npos) << p.body;
}

TEST_F(DashboardTest, UnknownAndMalformedPathsAreNotFoundPagesThatLinkBack) {
  Register("w1", 1);
  Submit(coretest::Spec("zeta", "Random", 1, 1));
  struct Case {
    std::string path, says;
  };
  for (const Case& c : std::vector<Case>{{"/ui/jobs/nope", "no tuning job named nope"},
                                         {"/ui/trials/zeta-099-00000000", "No training job named zeta-099-00000000"},
                                         {"/ui/jobs/..%2F..%2Fetc", "no tuning job can be named"},
                                         {"/ui/jobs/-x", "no tuning job can be named"},
                                         {"/ui/trials/a<b", "no training job can be named &quot;a&lt;b&quot;"},
                                         {"/ui/settings", "there is no page /ui/settings"}}) {
    dashboard::Page p = Get(c.path);
    EXPECT_EQ(p.status, 404) << c.path;
    EXPECT_NE(p.body.find(c.says), std::string::npos) << c.path << "\n" << p.body;
    EXPECT_NE(p.body.find("<a href=\"/ui/\">All tuning jobs</a>"), std::string::npos) << c.path;
  }
}

TEST_F(DashboardTest, TheTrainingJobsDownloadAsCsvWithTheSdkAnalyticsColumns) {
  Register("w1", 4);
  proto::TuningJobSpec spec = coretest::Spec("csv", "Random", 2, 2);
  spec.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges[0].values = {
      "=HYPERLINK(\"x\")", "a,b"};
  auto assigns = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(assigns.size(), 2u);
  Finish("w1", assigns[0], -0.125);
  proto::wire::TrialExited x;
  x.trial = assigns[1].trial;
  x.attempt = assigns[1].attempt;
  x.status = "Failed";
  x.exit_code = 1;
  x.failure_reason = "AlgorithmError: bad \"input\"\nsecond line";
  Started("w1", assigns[1]);
  core_->OnMessage("w1", x, now_);

  EXPECT_NE(Get("/ui/jobs/csv").body.find("<a href=\"/ui/jobs/csv/trials.csv\">download as CSV</a>"), std::string::npos);
  dashboard::Page p = Get("/ui/jobs/csv/trials.csv");
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(p.content_type, "text/csv; charset=utf-8");
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = p.body.find("\r\n", at)) != std::string::npos; at = nl + 2) {
    lines.push_back(p.body.substr(at, nl - at));
  }
  ASSERT_EQ(lines.size(), 3u) << p.body;
  // The SDK's dataframe columns, in its order: hyperparameters first.
  EXPECT_EQ(lines[0],
            "act,opt,TrainingJobName,TrainingJobStatus,FinalObjectiveValue,TrainingStartTime,TrainingEndTime,"
            "TrainingElapsedTimeSeconds");
  EXPECT_NE(lines[1].find("," + assigns[0].trial + ",Completed,-0.125,"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("," + assigns[1].trial + ",Failed,,"), std::string::npos) << lines[2];
  // A value a spreadsheet would run as a formula is made text; one with a comma is quoted.
  for (size_t i : {1u, 2u}) {
    const bool formula = lines[i].find(",\"'=HYPERLINK(\"\"x\"\")\",") != std::string::npos;
    const bool comma = lines[i].find(",\"a,b\",") != std::string::npos;
    EXPECT_TRUE(formula != comma) << "the opt cell, quoted, the formula made text: " << lines[i];
    EXPECT_EQ(lines[i].find("\"=HYPERLINK"), std::string::npos) << lines[i];
  }
  EXPECT_EQ(Get("/ui/jobs/nope/trials.csv").status, 404);
}

// A coordinator's answers, as written here (the pages read nothing else).
// hpo compare's numbers: each job judged by its first N training jobs (N the fewest), its best
// and where it was found, the best so far by training job; notes for what does not compare.
TEST_F(DashboardTest, CompareJudgesEachJobByTheSameNumberOfTrainingJobs) {
  Register("w1", 4);
  auto run = [&](const proto::TuningJobSpec& spec, const std::vector<double>& losses) {
    auto queue = Only<proto::wire::AssignTrial>(Submit(spec));
    for (double loss : losses) {
      ASSERT_EQ(queue.size(), 1u);
      auto a = queue.front();
      queue = Only<proto::wire::AssignTrial>(Finish("w1", a, loss));
      now_ += 1000;
    }
  };
  run(coretest::Spec("alpha", "Random", 4, 1), {0.9, 0.4, 0.7, 0.2});
  run(coretest::Spec("beta", "Random", 3, 1), {0.5, 0.3, 0.6});
  std::vector<dashboard::CompareJob> jobs = {{source_.get(), "alpha", ""}, {source_.get(), "beta", "the beta job"}};
  auto cmp = dashboard::Compare(jobs, 0, now_ / 1000.0);
  ASSERT_TRUE(cmp.ok()) << cmp.status().ToString();
  const Json& c = *cmp;
  EXPECT_EQ(c["Budget"], 3) << "the fewest training jobs any of them created";
  EXPECT_TRUE(c["BudgetFromFewest"].get<bool>());
  EXPECT_TRUE(c["Notes"].empty()) << c.dump();
  const Json& a = c["Jobs"][0];
  const Json& b = c["Jobs"][1];
  EXPECT_EQ(a["Label"], "alpha");
  EXPECT_EQ(b["Label"], "the beta job");
  EXPECT_EQ(a["Strategy"], "Random");
  EXPECT_EQ(a["Status"], "Completed");
  EXPECT_EQ(a["Type"], "Minimize");
  EXPECT_EQ(a["MetricName"], "loss");
  EXPECT_EQ(a["TrainingJobs"], 4);
  EXPECT_EQ(a["WithObjective"], 4);
  EXPECT_EQ(a["Best"], 0.2);
  EXPECT_EQ(a["BestNumber"], 4);
  EXPECT_EQ(a["BestAtBudget"], 0.4) << "the best of alpha's first three";
  EXPECT_EQ(a["BestSoFar"], Json::parse("[0.9, 0.4, 0.4, 0.2]"));
  EXPECT_EQ(b["Best"], 0.3);
  EXPECT_EQ(b["BestNumber"], 2);
  EXPECT_EQ(b["BestAtBudget"], 0.3);
  EXPECT_EQ(b["BestTrainingJob"].get<std::string>().rfind("beta-002-", 0), 0u) << b["BestTrainingJob"];
  EXPECT_GT(a["SecondsToBest"].get<double>(), 0);
  EXPECT_GE(a["Seconds"].get<double>(), a["SecondsToBest"].get<double>());
  EXPECT_EQ(a["Leads"], Json::parse("[\"Best\"]")) << "alpha's 0.2 is the best; beta's 0.3 leads at 3";
  EXPECT_EQ(b["Leads"], Json::parse("[\"BestAtBudget\"]"));

  // A budget past what a job ran: its best so far, and a note saying so.
  auto wide = dashboard::Compare(jobs, 10, now_ / 1000.0);
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ((*wide)["Budget"], 10);
  EXPECT_EQ((*wide)["Jobs"][0]["BestAtBudget"], 0.2);
  ASSERT_EQ((*wide)["Notes"].size(), 2u) << wide->dump();
  EXPECT_EQ((*wide)["Notes"][1], "the beta job has 3 training jobs, fewer than 10: its best at 10 is its best so far");

  // Another objective: the values do not compare, and a note says so.
  proto::TuningJobSpec gamma = coretest::Spec("gamma", "Random", 1, 1);
  gamma.hyper_parameter_tuning_job_config->hyper_parameter_tuning_job_objective->type = "Maximize";
  run(gamma, {0.8});
  jobs.push_back({source_.get(), "gamma", ""});
  auto mixed = dashboard::Compare(jobs, 0, now_ / 1000.0);
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ((*mixed)["Budget"], 1);
  ASSERT_EQ((*mixed)["Notes"].size(), 1u) << mixed->dump();
  EXPECT_TRUE((*mixed)["Jobs"][0]["Leads"].empty()) << "values of different objectives lead nothing";
  EXPECT_NE((*mixed)["Notes"][0].get<std::string>().find("different objectives (Maximize loss, Minimize loss)"),
            std::string::npos)
      << (*mixed)["Notes"][0];

  // A job with no training job yet (no worker has its instance type) sets no budget, and a note
  // says it has none.
  proto::TuningJobSpec delta = coretest::Spec("delta", "Random", 2, 1);
  delta.training_job_definition->resource_config->instance_type = "ml.p4d.24xlarge";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(delta)).empty());
  auto empty = dashboard::Compare({jobs[0], jobs[1], {source_.get(), "delta", ""}}, 0, now_ / 1000.0);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  ASSERT_EQ((*empty)["Jobs"][2]["TrainingJobs"], 0) << empty->dump();
  EXPECT_EQ((*empty)["Budget"], 3) << "alpha's and beta's, not delta's none";
  ASSERT_EQ((*empty)["Notes"].size(), 1u) << empty->dump();
  EXPECT_EQ((*empty)["Notes"][0], "delta has 0 training jobs, fewer than 3: its best at 3 is its best so far");
  EXPECT_TRUE((*empty)["Jobs"][2]["BestAtBudget"].is_null());

  // An unknown job: NotFound, naming it.
  jobs.push_back({source_.get(), "nosuch", ""});
  auto missing = dashboard::Compare(jobs, 0, now_ / 1000.0);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message().rfind("nosuch: ", 0), 0u) << missing.status().message();
}

TEST_F(DashboardTest, TheComparePageDrawsEachJobsBestSoFarAndTheJobsPageOffersIt) {
  Register("w1", 4);
  for (const char* name : {"alpha", "beta"}) {
    auto queue = Only<proto::wire::AssignTrial>(Submit(coretest::Spec(name, "Random", 3, 1)));
    for (double loss : {0.5, 0.25, 0.75}) {
      ASSERT_EQ(queue.size(), 1u);
      auto a = queue.front();
      queue = Only<proto::wire::AssignTrial>(Finish("w1", a, name[0] == 'a' ? loss : loss / 2));
    }
  }
  const dashboard::Page list = Get("/ui/");
  EXPECT_NE(list.body.find("<form method=\"get\" action=\"/ui/compare\">"), std::string::npos);
  EXPECT_NE(list.body.find("<input type=\"checkbox\" name=\"jobs\" value=\"alpha\""), std::string::npos);

  const dashboard::Page p = Get("/ui/compare", {{"jobs", "alpha,beta"}});
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_NE(p.body.find("Comparing 2 tuning jobs"), std::string::npos);
  EXPECT_NE(p.body.find("Objective: Minimize loss"), std::string::npos);
  EXPECT_NE(p.body.find("<a href=\"/ui/jobs/alpha\">alpha</a>"), std::string::npos);
  EXPECT_NE(p.body.find("<b>0.125</b>"), std::string::npos) << "beta's best, bold as the best of its column";
  EXPECT_EQ(Count(p.body, "class=\"job-best\""), 2u);
  EXPECT_EQ(Count(p.body, "class=\"budget\""), 1u);
  EXPECT_NE(p.body.find("<code>hpo compare alpha beta</code>"), std::string::npos);

  EXPECT_EQ(Get("/ui/compare").status, 400);
  EXPECT_EQ(Get("/ui/compare", {{"jobs", "alpha,<script>"}}).status, 404);
  EXPECT_EQ(Get("/ui/compare", {{"jobs", "alpha,nope"}}).status, 404);
  EXPECT_EQ(Get("/ui/compare", {{"jobs", "alpha"}, {"budget", "0"}}).status, 400);
  EXPECT_EQ(Get("/ui/compare", {{"jobs", "alpha"}, {"budget", "2"}}).status, 200);
  // Too large is said as too large (it said "must be a whole number", which it was).
  const dashboard::Page huge = Get("/ui/compare", {{"jobs", "alpha"}, {"budget", "999999999999999999999"}});
  EXPECT_EQ(huge.status, 400);
  EXPECT_NE(huge.body.find("is more training jobs than a tuning job can have"), std::string::npos) << huge.body;
  std::string many;
  for (int i = 0; i < 21; ++i) many += "job" + std::to_string(i) + ",";
  const dashboard::Page too_many = Get("/ui/compare", {{"jobs", many}});
  EXPECT_EQ(too_many.status, 400);
  EXPECT_NE(too_many.body.find("at most 20 tuning jobs at once; got 21"), std::string::npos) << too_many.body;
}

TEST(DashboardQuery, RepeatedParametersAreJoinedInOrder) {
  const std::multimap<std::string, std::string> params = {{"jobs", "a"}, {"budget", "5"}, {"jobs", "b"}};
  const auto q = dashboard::QueryParameters(params);
  EXPECT_EQ(q.at("jobs"), "a,b");
  EXPECT_EQ(q.at("budget"), "5");
}

class CannedSource : public dashboard::Source {
 public:
  dashboard::Json describe, summaries = dashboard::Json::array();
  Result<dashboard::Json> Action(const std::string& action, const dashboard::Json&) override {
    if (action == "DescribeHyperParameterTuningJob") return describe;
    if (action == "ListTrainingJobsForHyperParameterTuningJob") return dashboard::Json{{"TrainingJobSummaries", summaries}};
    return Status::NotFound(action);
  }
  Result<dashboard::Json> Events(const std::string&, int64_t, size_t) override {
    return dashboard::Json{{"events", dashboard::Json::array()}, {"next", 0}};
  }
  Result<dashboard::Json> Logs(const std::string&, int64_t, size_t) override { return Status::NotFound("no logs"); }
  Result<dashboard::Json> Curves(const std::string&, size_t, const std::string&) override {
    return dashboard::Json{{"MetricName", "loss"}, {"Curves", dashboard::Json::object()}};
  }
};

// The # of a training job is the NNN of its name: a training job queued ahead is created when it
// launches, after later-numbered ones, and the rank in creation order made "#5" of job-006.
// Durations under ten seconds are shown to a tenth ("0s" for a 0.4 s training job).
TEST(DashboardNumbers, ATrainingJobsNumberIsTheOneInItsNameAndShortDurationsHaveATenth) {
  CannedSource src;
  src.describe = {{"HyperParameterTuningJobName", "nums"},
                  {"HyperParameterTuningJobStatus", "Completed"},
                  {"CreationTime", 1796000000.0},
                  {"HyperParameterTuningJobConfig",
                   {{"Strategy", "Random"},
                    {"HyperParameterTuningJobObjective", {{"Type", "Minimize"}, {"MetricName", "loss"}}}}}};
  const std::vector<std::pair<std::string, double>> made = {
      {"nums-001-aaaaaaaa", 1}, {"nums-002-bbbbbbbb", 2}, {"nums-006-cccccccc", 3}, {"nums-004-dddddddd", 4}};
  for (const auto& [n, at] : made) {
    src.summaries.push_back({{"TrainingJobName", n},
                             {"TrainingJobStatus", "Completed"},
                             {"CreationTime", 1796000000.0 + at},
                             {"TrainingStartTime", 1796000000.0 + at},
                             {"TrainingEndTime", 1796000000.4 + at},
                             {"TunedHyperParameters", dashboard::Json::object()}});
  }
  const std::string b = dashboard::Render(src, "/ui/jobs/nums", {{"sort", "number"}}, {}).body;
  for (const auto& [n, at] : made) {
    const std::string num = std::to_string(std::stoi(n.substr(5, 3)));
    EXPECT_NE(b.find("<td class=\"num\">" + num + "</td><td class=\"name\"><a href=\"/ui/trials/" + n + "\""),
              std::string::npos)
        << n << " is #" << num << "\n" << b;
  }
  EXPECT_LT(b.find("/ui/trials/nums-004-dddddddd\""), b.find("/ui/trials/nums-006-cccccccc\"")) << "by number";
  EXPECT_NE(b.find("<td>0.4s</td>"), std::string::npos) << b;
}

// Numbers as people wrote them: the shortest text that reads back as the same double, elapsed
// seconds to the millisecond (they read 0.98028999999999999 and 0.0109999).
TEST(TrainingJobsCsv, NumbersAreTheShortestThatReadBackTheSame) {
  nlohmann::json rows = nlohmann::json::array();
  rows.push_back({{"TrainingJobName", "t"},
                  {"TrainingJobStatus", "Completed"},
                  {"FinalHyperParameterTuningJobObjectiveMetric", {{"MetricName", "auc"}, {"Value", 0.98029}}},
                  {"TrainingStartTime", 1796000000.125},
                  {"TrainingEndTime", 1796000000.136}});
  const std::string csv = dashboard::TrainingJobsCsv(rows);
  EXPECT_NE(csv.find("\r\nt,Completed,0.98029,"), std::string::npos) << csv;
  // Times as pandas writes the SDK's datetimes, elapsed their difference to the millisecond.
  EXPECT_NE(csv.find(",2026-11-30 00:53:20.125000+00:00,2026-11-30 00:53:20.136000+00:00,0.011\r\n"),
            std::string::npos)
      << csv;
  EXPECT_EQ(csv.find("TrainingJobDefinitionName"), std::string::npos) << "one definition: no such column\n" << csv;
  rows[0]["TrainingJobDefinitionName"] = "xgb";
  EXPECT_NE(dashboard::TrainingJobsCsv(rows).find(",0.011,xgb\r\n"), std::string::npos) << dashboard::TrainingJobsCsv(rows);
}

// coretest::Spec(job, "Random", max_jobs, parallel) as TrainingJobDefinitions named `names`, each
// with the job's objective and ranges (opt {3 values}, act {2 values}), then `adjust`ed.
proto::TuningJobSpec DefinitionsSpec(const std::string& job, int max_jobs, int parallel,
                                     const std::vector<std::string>& names,
                                     const std::function<void(proto::TrainingJobDefinition&)>& adjust) {
  proto::TuningJobSpec spec = coretest::Spec(job, "Random", max_jobs, parallel);
  auto& cfg = *spec.hyper_parameter_tuning_job_config;
  for (const std::string& name : names) {
    proto::TrainingJobDefinition d = *spec.training_job_definition;
    d.definition_name = name;
    d.tuning_objective = cfg.hyper_parameter_tuning_job_objective;
    d.hyper_parameter_ranges = cfg.parameter_ranges;
    adjust(d);
    spec.training_job_definitions.push_back(d);
  }
  cfg.hyper_parameter_tuning_job_objective.reset();
  cfg.parameter_ranges.reset();
  spec.training_job_definition.reset();
  return spec;
}

// A job with two training job definitions: the objective comes from the definitions, and each
// definition gets its own parallel-coordinates chart over its own hyperparameters.
TEST_F(DashboardTest, AJobWithTwoDefinitionsHasAParallelChartForEach) {
  Register("w1", 4);
  // A long name ran the chart's title past its edge: it is cut to fit.
  const proto::TuningJobSpec spec = DefinitionsSpec(
      "defs", 6, 2, {"small", "large-xgboost-definition-with-a-long-name"}, [](proto::TrainingJobDefinition& d) {
        auto& cats = d.hyper_parameter_ranges->categorical_parameter_ranges;
        cats[1].name = *d.definition_name + "_act";  // one hyperparameter of its own
      });
  std::vector<proto::wire::AssignTrial> queue = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_FALSE(queue.empty());
  double loss = 1;
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, loss -= 0.1))) queue.push_back(m);
  }
  std::string b = Get("/ui/jobs/defs").body;
  EXPECT_NE(b.find(">Minimize loss<"), std::string::npos) << "the objective, from the definitions";
  EXPECT_NE(b.find(">Every hyperparameter of definition small<"), std::string::npos);
  EXPECT_NE(b.find(">Every hyperparameter of definition large-xgboost-~<"), std::string::npos);
  EXPECT_NE(b.find(">green: best, red: worst<"), std::string::npos);
  EXPECT_EQ(Count(b, "class=\"pc\""), 6u) << "every training job, each on its definition's chart";
  EXPECT_NE(b.find("<th>Definition</th>"), std::string::npos);
}

// A multi-definition pass: two definitions with a hyperparameter of one name but other ranges
// (depth 1..5 and 100..200) shared one chart on the first's axis, the second's points drawn far
// off it. Such a name gets a chart per definition; one they agree on stays one chart.
TEST_F(DashboardTest, AHyperparameterWhoseRangesDifferByDefinitionGetsAChartForEach) {
  Register("w1", 4);
  const proto::TuningJobSpec spec = DefinitionsSpec("split", 6, 2, {"a", "b"}, [](proto::TrainingJobDefinition& d) {
    auto& cats = d.hyper_parameter_ranges->categorical_parameter_ranges;
    if (*d.definition_name == "b") cats[0].values = {"other-1", "other-2"};
  });
  std::vector<proto::wire::AssignTrial> queue = Only<proto::wire::AssignTrial>(Submit(spec));
  double loss = 1;
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, loss -= 0.1))) queue.push_back(m);
  }
  const std::string b = Get("/ui/jobs/split").body;
  const auto& cats = spec.training_job_definitions[0].hyper_parameter_ranges->categorical_parameter_ranges;
  const std::string split = cats[0].name.value_or(""), shared = cats[1].name.value_or("");
  EXPECT_NE(b.find(">" + split + " (a)<"), std::string::npos) << b;
  EXPECT_NE(b.find(">" + split + " (b)<"), std::string::npos);
  EXPECT_NE(b.find(">other-1<"), std::string::npos) << "b's own values on its axis";
  EXPECT_NE(b.find(">" + shared + "<"), std::string::npos);
  EXPECT_EQ(b.find(">" + shared + " (a)<"), std::string::npos) << "the ranges agree: one chart";
  EXPECT_EQ(Count(b, "<th>" + split + "</th>"), 2u) << "one column in the training jobs table (and the best's)";
}

// Definitions that tune metrics of their own: the page labelled every value with the first
// definition's metric (a usability pass: val_loss over another definition's train_loss values).
TEST_F(DashboardTest, DefinitionsWithTheirOwnMetricsAreLabelledAsSuch) {
  Register("w1", 4);
  const proto::TuningJobSpec spec = DefinitionsSpec("mixed", 4, 2, {"a", "b"}, [](proto::TrainingJobDefinition& d) {
    d.tuning_objective->metric_name = "loss_" + *d.definition_name;
    d.algorithm_specification->metric_definitions = {{d.tuning_objective->metric_name, "x=([0-9.]+)"}};
  });
  std::vector<proto::wire::AssignTrial> queue = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_FALSE(queue.empty());
  double loss = 1;
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    Started("w1", a);
    proto::wire::MetricPoints m = PointsMessage(a, {loss -= 0.1, loss});  // each definition's metric
    m.points[0].name = "loss_a";
    m.points[1].name = "loss_b";
    m.points[1].step = 0;
    core_->OnMessage("w1", m, now_);
    sent_[a.trial] = m.seq;
    for (auto& n : Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"))) queue.push_back(n);
  }
  const std::string b = Get("/ui/jobs/mixed").body;
  EXPECT_NE(b.find("Minimize <span class=\"muted\">per definition:</span> a loss_a, b loss_b"), std::string::npos)
      << b.substr(0, 4000);
  EXPECT_EQ(b.find("<th>loss_a</th>"), std::string::npos) << "no column named after one definition's metric";
  EXPECT_NE(b.find("<th>objective</th>"), std::string::npos);
  EXPECT_TRUE(b.find(">Best loss_a<") != std::string::npos || b.find(">Best loss_b<") != std::string::npos)
      << "the best's own metric";
}

// A large job's page draws its best and newest training jobs only, says so, and caps the table.
TEST_F(DashboardTest, ALargeJobsPageDrawsTheBestAndTheNewestAndSaysSo) {
  Register("w1", 8);
  proto::TuningJobSpec spec = coretest::Spec("big", "Random", 60, 8);
  // One continuous range (a finite space would run out of configurations): one hyperparameter chart.
  auto& ranges = *spec.hyper_parameter_tuning_job_config->parameter_ranges;
  ranges.categorical_parameter_ranges.clear();
  ranges.continuous_parameter_ranges.clear();
  proto::NumericRange x;
  x.name = "x";
  x.min_value = "0";
  x.max_value = "1";
  ranges.continuous_parameter_ranges.push_back(x);
  std::vector<proto::wire::AssignTrial> queue = Only<proto::wire::AssignTrial>(Submit(spec));
  std::vector<std::string> order;  // creation order = assignment order here
  std::map<std::string, double> loss;
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    const double l = static_cast<double>((order.size() * 37) % 60);  // a permutation of 0..59
    order.push_back(a.trial);
    loss[a.trial] = l;
    Emit("w1", a, {l + 1, l});
    for (auto& m : Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"))) queue.push_back(m);
  }
  ASSERT_EQ(order.size(), 60u);
  dashboard::PageOptions o;
  o.max_points = 20;  // the 5 best, the 15 newest
  o.max_curves = 8;   // the 2 best, the 6 newest
  o.max_rows = 25;
  std::string b = dashboard::Render(*source_, "/ui/jobs/big", {}, o).body;
  EXPECT_NE(b.find("The charts show 20 of the 60 training jobs"), std::string::npos);
  EXPECT_EQ(Count(b, "class=\"pt\""), 2 * 20u) << "objective chart + the one hyperparameter chart";
  EXPECT_EQ(Count(b, "class=\"curve\""), 8u);
  EXPECT_EQ(Count(b, "<tr class=\"best\">") + Count(b, "<tr><td class=\"num\">"), 25u) << "25 table rows";
  EXPECT_NE(b.find("The first 25 of 60 rows"), std::string::npos);
  EXPECT_NE(b.find("href=\"?rows=all&amp;sort=objective\""), std::string::npos);
  // Which: the 5 lowest losses (0..4), then the newest until there are 20.
  std::set<std::string> expected;
  for (const auto& t : order) {
    if (loss[t] < 5) expected.insert(t);
  }
  for (size_t i = order.size(); i-- > 0 && expected.size() < 20;) expected.insert(order[i]);
  size_t objective_chart = b.find("Objective by training job");
  std::string chart = b.substr(objective_chart, b.find("</svg>", objective_chart) - objective_chart);
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(chart.find("/ui/trials/" + order[i] + "\"") != std::string::npos, expected.count(order[i]) == 1)
        << order[i] << " loss " << loss[order[i]] << " #" << i;
  }
  EXPECT_EQ(Count(dashboard::Render(*source_, "/ui/jobs/big", {{"rows", "all"}}, o).body, "/ui/trials/big-"),
            Count(b, "/ui/trials/big-") + 35u) << "?rows=all shows the 35 other rows";
  // The curves endpoint's own limit and single training job.
  auto curves = source_->Curves("big", 8, "");
  ASSERT_TRUE(curves.ok());
  EXPECT_EQ((*curves)["Curves"].size(), 8u);
  auto one = source_->Curves("big", 0, order[3]);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ((*one)["Curves"].size(), 1u);
  EXPECT_EQ((*one)["Curves"][order[3]], Json::array({loss[order[3]] + 1, loss[order[3]]}));
}

// cpp-httplib sets SO_REUSEPORT by default, with which a second coordinator on the same port
// started and the kernel split API calls between the two: a port in use is refused.
TEST_F(DashboardTest, ASecondApiCannotListenOnAPortInUse) {
  HttpApiOptions o;
  o.log = [](const std::string&) {};
  HttpApi first(dispatcher_.get(), o);
  ASSERT_TRUE(first.Bind("127.0.0.1", 0).ok());
  HttpApi second(dispatcher_.get(), o);
  Status s = second.Bind("127.0.0.1", first.port());
  EXPECT_FALSE(s.ok()) << "port " << first.port() << " bound twice";
  EXPECT_NE(s.message().find("in use"), std::string::npos) << s.message();
}

// /hpo/v1/metrics counts training jobs as DescribeHyperParameterTuningJob does: it counted the
// two queued ahead as InProgress (4 for MaxParallelTrainingJobs 2).
TEST_F(DashboardTest, TheMetricsCountNoTrainingJobQueuedAhead) {
  source_.reset();
  dispatcher_.reset();
  options_.assign_ahead = true;
  MakeCore();
  SetUp();
  Register("w", 2);
  auto out = Submit(coretest::Spec("m", "Random", 6, 2));
  size_t ahead = 0;
  for (const auto& a : Only<proto::wire::AssignTrial>(out)) ahead += a.after_trial.empty() ? 0 : 1;
  ASSERT_EQ(ahead, 2u) << "two queued ahead";
  HttpApiOptions o;
  o.log = [](const std::string&) {};
  HttpApi api(dispatcher_.get(), o);
  ASSERT_TRUE(api.Bind("127.0.0.1", 0).ok());
  std::thread serving([&] { api.Serve(); });
  auto got = httplib::Client("127.0.0.1", api.port()).Get("/hpo/v1/metrics");
  api.Stop();
  serving.join();
  ASSERT_TRUE(got);
  EXPECT_NE(got->body.find("hpo_training_jobs{tuning_job=\"m\",status=\"InProgress\"} 2\n"), std::string::npos)
      << got->body;
}

// A NextToken names a place in one list: taken from job qa1's training jobs for job qa2's (or for
// another action) it paged through rows it never had. Now it is refused, saying so; the
// coordinator's own events cursor takes digits only (limit=-1 was read as 2^64 - 1).
// An SDK pass: a training job's LastModifiedTime moved with every metric its trainer printed,
// and the SageMaker SDK stamps its status lines with it. It is the time of its last status
// change, in DescribeTrainingJob and ListTrainingJobs alike.
TEST_F(DashboardTest, ATrainingJobsLastModifiedTimeIsItsLastStatusChangeNotItsLatestMetric) {
  Register("w", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("lm", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Emit("w", a[0], {0.9});  // starts, Training
  const int64_t training_ms = now_;
  now_ += 7000;
  Emit("w", a[0], {0.5}, 2);
  auto d = source_->Action("DescribeTrainingJob", {{"TrainingJobName", a[0].trial}});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)["SecondaryStatus"], "Training");
  EXPECT_DOUBLE_EQ((*d)["LastModifiedTime"].get<double>(), training_ms / 1000.0) << d->dump();
  auto l = source_->Action("ListTrainingJobs", Json::object());
  ASSERT_TRUE(l.ok());
  ASSERT_EQ((*l)["TrainingJobSummaries"].size(), 1u);
  EXPECT_EQ((*l)["TrainingJobSummaries"][0]["LastModifiedTime"], (*d)["LastModifiedTime"]);
}

TEST_F(DashboardTest, ATokenOfOneListIsRefusedForAnotherAndACursorTakesDigitsOnly) {
  Register("w", 4);
  Submit(coretest::Spec("qa1", "Random", 4, 2));
  Submit(coretest::Spec("qa2", "Random", 4, 2));
  HttpApiOptions o;
  o.log = [](const std::string&) {};
  HttpApi api(dispatcher_.get(), o);
  ASSERT_TRUE(api.Bind("127.0.0.1", 0).ok());
  std::thread serving([&] { api.Serve(); });
  httplib::Client client("127.0.0.1", api.port());
  auto call = [&](const std::string& action, const Json& body) {
    auto r = client.Post("/", {{"X-Amz-Target", "SageMaker." + action}}, body.dump(), "application/x-amz-json-1.1");
    return r ? std::make_pair(r->status, Json::parse(r->body, nullptr, false)) : std::make_pair(0, Json());
  };
  auto [status, first] = call("ListTrainingJobsForHyperParameterTuningJob",
                              {{"HyperParameterTuningJobName", "qa1"}, {"MaxResults", 1}});
  ASSERT_EQ(status, 200) << first.dump();
  ASSERT_TRUE(first.contains("NextToken")) << first.dump();
  const Json token = first["NextToken"];
  EXPECT_EQ(call("ListTrainingJobsForHyperParameterTuningJob",
                 {{"HyperParameterTuningJobName", "QA1"}, {"MaxResults", 1}, {"NextToken", token}})
                .first,
            200)
      << "the same list (names are not case sensitive)";
  auto [other, refused] = call("ListTrainingJobsForHyperParameterTuningJob",
                               {{"HyperParameterTuningJobName", "qa2"}, {"MaxResults", 1}, {"NextToken", token}});
  EXPECT_EQ(other, 400) << refused.dump();
  EXPECT_NE(refused.value("message", "").find("NextToken was issued for another list"), std::string::npos)
      << refused.dump();
  auto [order, other_order] = call("ListTrainingJobsForHyperParameterTuningJob",
                                   {{"HyperParameterTuningJobName", "qa1"}, {"MaxResults", 1}, {"NextToken", token},
                                    {"SortBy", "Status"}});
  EXPECT_EQ(order, 400) << "a token belongs to its sort order too";
  EXPECT_NE(other_order.value("message", "").find("NextToken was issued for SortBy"), std::string::npos)
      << other_order.dump();
  EXPECT_EQ(call("ListTrainingJobs", {{"NextToken", token}}).first, 400);
  EXPECT_EQ(call("ListHyperParameterTuningJobs", {{"NextToken", token}}).first, 400);
  for (const std::string bad : {"-1", "12abc", "", "99999999999999999999"}) {
    auto r = client.Get("/hpo/v1/events?limit=" + bad);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << "limit=" << bad << ": " << r->body;
  }
  auto fine = client.Get("/hpo/v1/events?limit=99999999999");
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->status, 200) << "a large limit is capped at 10,000";
  api.Stop();
  serving.join();
}

// A worker that has shut down (its planned notice) and holds nothing is Leaving, not Draining: an
// operator who stopped it saw it "Draining ... shutting down" for another lease. One shutting down
// that still runs a training job drains.
TEST_F(DashboardTest, AWorkerThatShutDownWithNothingThereIsListedAsLeaving) {
  Register("idle", 1);
  Register("busy", 1);
  auto a = coretest::Only<proto::wire::AssignTrial>(Submit(coretest::Spec("held", "Random", 1, 1))).at(0);
  const std::string held_by = core_->FindTrial(a.trial)->worker_id;
  Started(held_by, a);
  for (const std::string w : {"idle", "busy"}) {
    proto::wire::InterruptionNotice n;
    n.worker_id = w;
    n.reason = "the worker " + w + " is shutting down";
    n.planned = true;
    dispatcher_->WithCore([&](CoordinatorCore& c) { c.OnMessage(w, n, now_); });
  }
  HttpApi api(dispatcher_.get(), HttpApiOptions{});
  ASSERT_TRUE(api.Bind("127.0.0.1", 0).ok());
  std::thread serving([&] { api.Serve(); });
  httplib::Client client("127.0.0.1", api.port());
  auto r = client.Get("/hpo/v1/workers");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::map<std::string, nlohmann::json> by_id;
  const nlohmann::json listed = nlohmann::json::parse(r->body);  // named: a loop over a temporary's member dangles
  for (const auto& w : listed["Workers"]) by_id[w["WorkerId"].get<std::string>()] = w;
  const std::string free_one = held_by == "idle" ? "busy" : "idle";
  EXPECT_EQ(by_id[free_one]["State"], "Leaving") << r->body;
  EXPECT_NE(by_id[free_one].value("Reason", "").find("listed as Left once the coordinator's lease"), std::string::npos)
      << r->body;
  EXPECT_EQ(by_id[held_by]["State"], "Draining") << r->body;
  api.Stop();
  serving.join();
}

// An operator pass: any web page could submit a tuning job (a program for the workers to run) to a
// coordinator on loopback, with a text/plain POST a browser sends without asking, and a page whose
// name was rebound to 127.0.0.1 could read the API's answers. Both are refused now, before the
// signature check, changing nothing; hpo's own requests and same-origin dashboard pages pass.
TEST_F(DashboardTest, AWebPagesRequestIsRefusedAndChangesNothing) {
  Register("w", 2);
  std::vector<std::string> logged;
  HttpApiOptions o;
  o.log = [&](const std::string& l) { logged.push_back(l); };
  HttpApi api(dispatcher_.get(), o);
  ASSERT_TRUE(api.Bind("127.0.0.1", 0).ok());
  std::thread serving([&] { api.Serve(); });
  httplib::Client client("127.0.0.1", api.port());
  const std::string self = "127.0.0.1:" + std::to_string(api.port());
  const std::string spec = proto::EncodeCreateRequest(coretest::Spec("csrf", "Random", 2, 1)).dump();
  auto jobs = [&] {
    return dispatcher_->WithCore([](CoordinatorCore& c) { return c.Jobs().size(); });
  };
  const size_t before = jobs();
  auto cross = client.Post("/hpo/v1/jobs", {{"Origin", "http://evil.example.com"}}, spec, "text/plain");
  ASSERT_TRUE(cross);
  EXPECT_EQ(cross->status, 403) << cross->body;
  EXPECT_NE(cross->body.find("AccessDeniedException"), std::string::npos) << cross->body;
  EXPECT_NE(cross->body.find("Origin http://evil.example.com"), std::string::npos) << cross->body;
  auto other_port = client.Post("/", {{"Origin", "http://127.0.0.1:1"}, {"X-Amz-Target", "SageMaker.CreateHyperParameterTuningJob"}},
                                spec, "text/plain");
  ASSERT_TRUE(other_port);
  EXPECT_EQ(other_port->status, 403) << "another port of the same machine is another origin";
  auto cordon = client.Post("/hpo/v1/workers/cordon", {{"Origin", "null"}}, R"({"WorkerId":"w","Reason":"x"})",
                            "text/plain");
  ASSERT_TRUE(cordon);
  EXPECT_EQ(cordon->status, 403) << "a sandboxed page's Origin is null";
  httplib::Headers rebound{{"Host", "evil.example.com:" + std::to_string(api.port())}};
  auto read = client.Get("/hpo/v1/workers", rebound);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 403) << read->body;
  EXPECT_NE(read->body.find("Host evil.example.com"), std::string::npos) << read->body;
  auto page = client.Get("/ui/", rebound);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 403);
  EXPECT_EQ(page->body.find("<html"), std::string::npos) << "no page for a rebound name";
  EXPECT_EQ(jobs(), before) << "nothing was submitted";
  EXPECT_EQ(dispatcher_->WithCore([](CoordinatorCore& c) { return c.Workers()[0]->cordoned; }), "");
  EXPECT_EQ(logged.size(), 5u) << "each refusal is logged";

  // What passes: hpo's and the SDKs' requests (no Origin), the dashboard's own origin, loopback names.
  auto same = client.Post("/hpo/v1/jobs", {{"Origin", "http://" + self}}, spec, "text/plain");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 200) << same->body;
  for (const std::string host : {"localhost", "LOCALHOST", "127.0.0.2", "[::1]", "hpo.localhost"}) {
    auto r = client.Get("/hpo/v1/workers", {{"Host", host + ":" + std::to_string(api.port())}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << host << ": " << r->body;
  }

  // An operator pass: every refusal was a log line, of any length, and anyone who reaches the
  // port can make them. At most 20 a minute now, each at most 300 characters and "...".
  for (int i = 0; i < 30; ++i) {
    auto r = client.Get("/hpo/v1/workers", {{"Host", std::string(2000, 'h')}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403);
  }
  EXPECT_EQ(logged.size(), 20u);
  EXPECT_LE(logged.back().size(), 303u) << logged.back();
  api.Stop();
  serving.join();
}

TEST(BrowserRequestRefusal, ComparesOriginWithHostAndLoopbackNames) {
  constexpr auto kLoopback = UnsignedAnswers::kLoopback;
  constexpr auto kSigned = UnsignedAnswers::kNone;
  EXPECT_EQ(BrowserRequestRefusal("127.0.0.1:7780", "", kLoopback), "");
  EXPECT_EQ(BrowserRequestRefusal("127.0.0.1:7780", "http://127.0.0.1:7780", kLoopback), "");
  EXPECT_EQ(BrowserRequestRefusal("gpu-head", "https://gpu-head:443", kSigned), "") << "a default port left out";
  EXPECT_EQ(BrowserRequestRefusal("gpu-head:7780", "", kSigned), "") << "a signed API serves any name";
  EXPECT_NE(BrowserRequestRefusal("gpu-head:7780", "http://gpu-head:7781", kSigned), "");
  EXPECT_NE(BrowserRequestRefusal("localhost:7780", "file://", kLoopback), "");
  EXPECT_NE(BrowserRequestRefusal("", "", kLoopback), "") << "no Host on a loopback API";
  EXPECT_NE(BrowserRequestRefusal("127.0.0.1.evil.example:7780", "", kLoopback), "");
  EXPECT_NE(BrowserRequestRefusal("localhost.evil.example", "", kLoopback), "");
  // Unsigned on a network address (--http-auth off on 0.0.0.0): a rebound name is refused, even
  // with an Origin that matches it (a user pass ran a program on the workers so); this machine's
  // addresses and names are served.
  constexpr auto kNetwork = UnsignedAnswers::kNetwork;
  const std::vector<std::string> names = {"gpu-head", "gpu-head.lab.example"};
  EXPECT_NE(BrowserRequestRefusal("attacker.example:17882", "http://attacker.example:17882", kNetwork, names), "");
  EXPECT_NE(BrowserRequestRefusal("gpu-head.attacker.example:7780", "", kNetwork, names), "");
  EXPECT_NE(BrowserRequestRefusal("", "", kNetwork, names), "");
  EXPECT_EQ(BrowserRequestRefusal("10.1.2.3:7780", "", kNetwork, names), "");
  EXPECT_EQ(BrowserRequestRefusal("[fd00::1]:7780", "", kNetwork, names), "");
  EXPECT_EQ(BrowserRequestRefusal("GPU-HEAD:7780", "", kNetwork, names), "") << "ignoring case";
  EXPECT_EQ(BrowserRequestRefusal("gpu-head.lab.example.:7780", "", kNetwork, names), "");
  EXPECT_EQ(BrowserRequestRefusal("localhost:7780", "", kNetwork, names), "");
  EXPECT_NE(BrowserRequestRefusal("attacker.example:7780", "", kNetwork, names).find("--http-auth off"),
            std::string::npos);
  EXPECT_TRUE(IsLoopbackHost("[::1]"));
  EXPECT_TRUE(IsLoopbackHost("a.localhost"));
  EXPECT_FALSE(IsLoopbackHost("localhostx"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

TEST(DashboardSelection, BestAndNewestKeepsTheBestQuarterThenTheNewestInOrder) {
  using V = std::vector<std::optional<double>>;
  EXPECT_EQ(dashboard::BestAndNewest(V{3, 1, 2}, true, 0), (std::vector<size_t>{0, 1, 2})) << "0: no limit";
  EXPECT_EQ(dashboard::BestAndNewest(V{3, 1, 2}, true, 3), (std::vector<size_t>{0, 1, 2}));
  // limit 4: the best one (index 1 minimizing, index 0 maximizing), then the newest three.
  V v = {9, 0.5, std::nullopt, 7, 8, 6, 5};
  EXPECT_EQ(dashboard::BestAndNewest(v, true, 4), (std::vector<size_t>{1, 4, 5, 6}));
  EXPECT_EQ(dashboard::BestAndNewest(v, false, 4), (std::vector<size_t>{0, 4, 5, 6}));
  // The best among the newest is not counted twice.
  EXPECT_EQ(dashboard::BestAndNewest(V{5, 4, 3, 2, 1}, true, 4), (std::vector<size_t>{1, 2, 3, 4}));
  EXPECT_EQ(dashboard::BestAndNewest(V{std::nullopt, std::nullopt, std::nullopt}, true, 2), (std::vector<size_t>{1, 2}));
}

// A coordinator that answers with errors or documents of the wrong shape: pages say so.
class BrokenSource : public dashboard::Source {
 public:
  explicit BrokenSource(bool wrong_shape) : wrong_shape_(wrong_shape) {}
  Result<Json> Action(const std::string&, const Json&) override {
    if (wrong_shape_) return Json{{"HyperParameterTuningJobSummaries", {{{"HyperParameterTuningJobName", 7}}}},
                                  {"HyperParameterTuningJobConfig", "not an object"},
                                  {"TrainingJobSummaries", 3}};
    return Status::Unavailable("cannot reach the coordinator at http://10.0.0.9:7780 (Connection refused)");
  }
  Result<Json> Events(const std::string&, int64_t, size_t) override { return Status::Unavailable("down"); }
  Result<Json> Logs(const std::string&, int64_t, size_t) override { return Status::Unavailable("down"); }
  Result<Json> Curves(const std::string&, size_t, const std::string&) override { return Status::Unavailable("down"); }

 private:
  bool wrong_shape_;
};

TEST(DashboardSources, AnUnreachableOrGarbledCoordinatorGivesAnErrorPageNotACrash) {
  BrokenSource down(false);
  for (const char* path : {"/ui/", "/ui/jobs/a", "/ui/trials/a-001-00000000"}) {
    dashboard::Page p = dashboard::Render(down, path, {});
    EXPECT_EQ(p.status, 502) << path;
    EXPECT_NE(p.body.find("Connection refused"), std::string::npos) << path;
  }
  BrokenSource garbled(true);
  for (const char* path : {"/ui/", "/ui/jobs/a", "/ui/trials/a-001-00000000"}) {
    dashboard::Page p = dashboard::Render(garbled, path, {});
    EXPECT_TRUE(p.status == 200 || p.status == 502) << path << " " << p.status;
    EXPECT_NE(p.body.find("</html>"), std::string::npos) << path;
  }
}

TEST(DashboardSources, TheSignedRequestsPageTellsWhatToRunAndEscapesTheReason) {
  std::string page = dashboard::SignedRequestsPage("MissingAuthenticationTokenException: <no signature>");
  EXPECT_NE(page.find("hpo dashboard --coordinator"), std::string::npos);
  EXPECT_NE(page.find("&lt;no signature&gt;"), std::string::npos);
  EXPECT_EQ(dashboard::Escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

// Paging a running job's training jobs newest first while new ones start between pages: every
// training job comes exactly once (a NextToken names the last row, not an offset that the new
// rows would shift).
TEST_F(DashboardTest, PagesOfARunningJobNewestFirstNeitherRepeatNorSkip) {
  Register("w1", 2);
  auto queue = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("paged", "Random", 6, 2)));
  ASSERT_EQ(queue.size(), 2u);
  std::vector<std::string> seen;
  Json req = {{"HyperParameterTuningJobName", "paged"}, {"SortBy", "CreationTime"}, {"SortOrder", "Descending"},
              {"MaxResults", 1}};
  for (int page = 0; page < 10; ++page) {
    now_ += 1000;
    auto r = source_->Action("ListTrainingJobsForHyperParameterTuningJob", req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (const auto& s : (*r)["TrainingJobSummaries"]) seen.push_back(s["TrainingJobName"].get<std::string>());
    // A training job ends and the next starts: a newer row appears ahead of the cursor.
    if (!queue.empty()) {
      auto a = queue.front();
      queue.erase(queue.begin());
      for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, 1.0))) queue.push_back(m);
    }
    if (!r->contains("NextToken")) break;
    req["NextToken"] = (*r)["NextToken"];
  }
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "a row came twice";
  EXPECT_GE(seen.size(), 2u);
  Json bad = {{"HyperParameterTuningJobName", "paged"}, {"NextToken", "hpo2:zz"}};
  auto refused = source_->Action("ListTrainingJobsForHyperParameterTuningJob", bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("NextToken is not a token this coordinator issued"), std::string::npos);
}

// The Running card counts the training jobs whose program runs; those still starting (staging
// data, or assigned ahead to a busy slot) are shown apart, so the card stays within the limit.
TEST_F(DashboardTest, TheRunningCardCountsStartedTrainingJobsAndShowsTheOthersApart) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("cards", "Random", 4, 2)));
  ASSERT_EQ(a.size(), 2u);
  std::string b = Get("/ui/jobs/cards").body;
  EXPECT_NE(b.find("0 of at most 2 <span class=\"muted\">+2 starting or queued</span>"), std::string::npos) << b;
  Started("w1", a[0]);
  b = Get("/ui/jobs/cards").body;
  EXPECT_NE(b.find("1 of at most 2 <span class=\"muted\">+1 starting or queued</span>"), std::string::npos) << b;
  Started("w1", a[1]);
  b = Get("/ui/jobs/cards").body;
  EXPECT_NE(b.find("2 of at most 2</div>"), std::string::npos) << b;
}

// A warm-started job says so: a card on its page linking its parents, and a WarmStart event with
// how many of their training jobs inform the search.
TEST_F(DashboardTest, AWarmStartedJobNamesItsTypeAndParentsOnItsPageAndInItsEvents) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(coretest::Spec("parent", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  Finish("w1", a[0], 0.5);
  Finish("w1", a[1], 0.25);
  proto::TuningJobSpec child = coretest::Spec("child", "Random", 4, 2);
  child.warm_start_config.emplace();
  child.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"parent"});
  child.warm_start_config->warm_start_type = "TransferLearning";
  Submit(child);
  const std::string b = Get("/ui/jobs/child").body;
  EXPECT_NE(b.find("Warm start</div><div class=\"v\">TransferLearning <span class=\"muted\">from</span> "
                   "<a href=\"/ui/jobs/parent\">parent</a>"),
            std::string::npos)
      << b;
  EXPECT_EQ(Get("/ui/jobs/parent").body.find("Warm start"), std::string::npos);
  auto events = core_->Events("child", 0, 100);
  ASSERT_TRUE(events.ok());
  bool found = false;
  for (const auto& e : *events) {
    if (e.kind == "WarmStart") {
      found = true;
      EXPECT_EQ(e.message, "TransferLearning from parent: 2 of their training jobs with an objective inform the search");
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace hpo::coordinator
