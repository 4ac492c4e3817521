// libFuzzer target for the coordinator's SageMaker API (coordinator/http_api.h,
// HandleSageMakerAction): the request bodies `aws sagemaker ... --endpoint-url` and boto3 send.
//
// Input layout: byte 0 chooses the action (the twelve the API implements, an unknown one, the four
// CloudWatch Logs actions and an unknown one of those, CloudWatch's three and an unknown one,
// then CloudWatch's query protocol, whose body names its own Action; then Search); the rest is the request
// body. One coordinator core (an in-memory store) serves every input, seeded with one valid
// tuning job, "fuzz-seed", with output lines and metric values, so that inputs naming it reach
// the describe, list, tag, stop, logs and metrics paths, and pagination tokens of real listings.
// The state carries over from input to input (a crash may need the inputs before it: rerun the
// corpus, not only the artifact).
//
// Checks, beyond "no crash, no sanitizer report": every JSON answer is JSON; a 200 answer is an
// object; an error is 4xx (a 5xx answer to a request is a finding) with a "__type" and a
// non-empty "message". A query-protocol answer is well-formed XML (tags nest, text escaped, no
// character XML forbids) and an error in it has a Code and a Message.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "coordinator/cloudwatch_logs.h"
#include "coordinator/cloudwatch_metrics.h"
#include "coordinator/core.h"
#include "coordinator/dispatcher.h"
#include "coordinator/http_api.h"
#include "coordinator/job_store.h"
#include "proto/messages.h"

namespace {

using hpo::coordinator::ApiResponse;
using hpo::coordinator::CoordinatorCore;
using hpo::coordinator::CoreOptions;
using hpo::coordinator::Dispatcher;
using hpo::coordinator::DispatcherOptions;
using hpo::coordinator::HandleCloudWatchAction;
using hpo::coordinator::HandleCloudWatchQuery;
using hpo::coordinator::HandleLogsAction;
using hpo::coordinator::HandleSageMakerAction;
using hpo::coordinator::SqliteJobStore;

constexpr const char* kActions[] = {"CreateHyperParameterTuningJob",
                                    "DescribeHyperParameterTuningJob",
                                    "ListHyperParameterTuningJobs",
                                    "ListTrainingJobsForHyperParameterTuningJob",
                                    "StopHyperParameterTuningJob",
                                    "DeleteHyperParameterTuningJob",
                                    "DescribeTrainingJob",
                                    "StopTrainingJob",
                                    "ListTags",
                                    "AddTags",
                                    "DeleteTags",
                                    "ListTrainingJobs",
                                    "DescribeEndpoint",
                                    // CloudWatch Logs' (coordinator/cloudwatch_logs.h), then an unknown one
                                    "Logs:DescribeLogGroups",
                                    "Logs:DescribeLogStreams",
                                    "Logs:GetLogEvents",
                                    "Logs:FilterLogEvents",
                                    "Logs:PutLogEvents",
                                    // CloudWatch's (coordinator/cloudwatch_metrics.h), then an unknown one
                                    "CW:GetMetricStatistics",
                                    "CW:ListMetrics",
                                    "CW:GetMetricData",
                                    "CW:PutMetricData",
                                    // CloudWatch in the query protocol: the body is the form, its Action in it
                                    "CWQ",
                                    // Added later, last so that the corpus's first bytes keep their actions
                                    "Search"};
constexpr size_t kActionCount = sizeof(kActions) / sizeof(kActions[0]);

constexpr const char* kSeedJob = R"json({
  "HyperParameterTuningJobName": "fuzz-seed",
  "HyperParameterTuningJobConfig": {
    "Strategy": "Random",
    "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
    "ParameterRanges": {"ContinuousParameterRanges": [
      {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"}]}
  },
  "TrainingJobDefinition": {
    "AlgorithmSpecification": {
      "TrainingImage": "file:///opt/trainers/sklearn_gbt.py", "TrainingInputMode": "File",
      "MetricDefinitions": [{"Name": "validation:auc", "Regex": "validation-auc:([0-9.]+)"}]},
    "RoleArn": "arn:aws:iam::123456789012:role/fuzz",
    "OutputDataConfig": {"S3OutputPath": "file:///tmp/hpo-api-fuzz"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    "StoppingCondition": {"MaxRuntimeInSeconds": 60}
  },
  "Tags": [{"Key": "team", "Value": "fuzz"}]
})json";

struct Coordinator {
  std::unique_ptr<SqliteJobStore> store;
  std::unique_ptr<CoordinatorCore> core;
  std::unique_ptr<Dispatcher> dispatcher;
};

std::unique_ptr<Coordinator> Seeded() {
  auto made = std::make_unique<Coordinator>();
  auto store = SqliteJobStore::Open(":memory:");
  HPO_CHECK_MSG(store.ok(), store.status().ToString());
  made->store = std::move(store).value();
  made->core = std::make_unique<CoordinatorCore>(made->store.get(), CoreOptions{});
  DispatcherOptions dopt;
  dopt.listen = "tcp://127.0.0.1:*";  // never bound: the API is called in process
  dopt.log = [](const std::string&) {};
  made->dispatcher = std::make_unique<Dispatcher>(made->core.get(), dopt);
  // A worker, so that the seed job's training jobs are made (none is before a worker registers);
  // what the core sends it goes nowhere.
  hpo::proto::wire::Register reg;
  reg.protocol_version = hpo::proto::wire::kProtocolVersion;
  reg.worker_id = reg.host = "fuzz-worker";
  reg.slots = 2, reg.cpus = 2, reg.memory_mb = 16384, reg.session = 1;
  (void)made->core->OnMessage(reg.worker_id, reg, 1700000000000);
  const ApiResponse seeded = HandleSageMakerAction(*made->dispatcher, kActions[0], kSeedJob);
  HPO_CHECK_MSG(seeded.status == 200, "the seed job was refused: " + seeded.body);
  // Output lines of its training jobs, for the logs actions to page through: two attempts, one
  // with two hosts.
  const std::vector<std::string> trials = made->core->TrialNames("fuzz-seed", "", 3);
  HPO_CHECK_MSG(!trials.empty(), "the seed job made no training jobs: the logs actions would find nothing");
  for (const std::string& trial : trials) {
    std::vector<hpo::coordinator::LogRow> rows;
    for (uint64_t i = 0; i < 30; ++i) {
      rows.push_back({0, trial, 1, hpo::coordinator::LogLineKey(0, i), "epoch=" + std::to_string(i) + " loss=0.5",
                      1700000000000 + static_cast<int64_t>(i) * 10});
      rows.push_back({0, trial, 2, hpo::coordinator::LogLineKey(1 + i % 2, i / 2), "host line " + std::to_string(i),
                      1700000001000 + static_cast<int64_t>(i)});
      // A trainer's JSON lines, for JSON filter patterns (coordinator/log_filter.h).
      rows.push_back({0, trial, 2, hpo::coordinator::LogLineKey(3, i),
                      "{\"epoch\": " + std::to_string(i) + ", \"loss\": " + (i % 3 ? "0.5" : "null") +
                          ", \"tags\": [\"a\", " + std::to_string(i) + "]}",
                      1700000002000 + static_cast<int64_t>(i)});
    }
    HPO_CHECK(made->store->AppendLogs(rows).ok());
    // And metric values, for the CloudWatch actions' periods.
    std::vector<hpo::coordinator::MetricRow> metrics;
    for (uint32_t i = 0; i < 20; ++i) {
      metrics.push_back({trial, 1, i, "validation:auc", 0.5 + 0.01 * i, 1700000000000 + static_cast<int64_t>(i) * 1500, i});
    }
    HPO_CHECK(made->store->AppendMetrics(metrics).ok());
  }
  return made;
}

// The coordinator every input talks to.
Coordinator& Shared() {
  static std::unique_ptr<Coordinator> c = Seeded();
  return *c;
}


// Whether `xml` is one well-formed element as the query protocol's answers are written: tags
// that nest and close, text with no raw '<', entities only &amp; &lt; &gt; &quot; &apos;, and no
// character XML 1.0 forbids (controls other than tab, newline and return).
std::string XmlProblem(const std::string& xml) {
  std::vector<std::string> open;
  for (size_t i = 0; i < xml.size();) {
    const unsigned char ch = static_cast<unsigned char>(xml[i]);
    if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') return "a control character at " + std::to_string(i);
    if (ch == '&') {
      static const char* kEntities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
      bool known = false;
      for (const char* e : kEntities) known = known || xml.compare(i, std::strlen(e), e) == 0;
      if (!known) return "a bare & at " + std::to_string(i);
      ++i;
      continue;
    }
    if (ch != '<') {
      ++i;
      continue;
    }
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return "an unclosed tag at " + std::to_string(i);
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (!tag.empty() && tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "</" + tag.substr(1) + "> closes nothing open";
      open.pop_back();
      if (open.empty() && i != xml.size()) return "text after the root element";
      continue;
    }
    const std::string name = tag.substr(0, tag.find(' '));
    if (name.empty() || name.find_first_of("<&\"'/") != std::string::npos) return "a bad tag <" + tag + ">";
    open.push_back(name);
  }
  return open.empty() ? "" : "<" + open.back() + "> is not closed";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Coordinator& c = Shared();
  const std::string action = kActions[data[0] % kActionCount];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (action == "CWQ") {
    const ApiResponse r = HandleCloudWatchQuery(*c.dispatcher, body);
    HPO_CHECK_MSG(r.status == 200 || (r.status >= 400 && r.status < 500),
                  "a query request answered " + std::to_string(r.status) + ": " + r.body);
    const std::string problem = XmlProblem(r.body);
    HPO_CHECK_MSG(problem.empty(), "a query request answered XML that is not well formed (" + problem + "): " + r.body);
    if (r.status != 200) {
      HPO_CHECK_MSG(r.body.find("<Code>") != std::string::npos && r.body.find("<Message></Message>") == std::string::npos,
                    "a query request answered an error without a code and a message: " + r.body);
    }
    return 0;
  }
  const ApiResponse r = action.rfind("Logs:", 0) == 0 ? HandleLogsAction(*c.dispatcher, action.substr(5), body)
                       : action.rfind("CW:", 0) == 0   ? HandleCloudWatchAction(*c.dispatcher, action.substr(3), body)
                                                       : HandleSageMakerAction(*c.dispatcher, action, body);
  HPO_CHECK_MSG(r.status == 200 || (r.status >= 400 && r.status < 500),
                action + " answered " + std::to_string(r.status) + ": " + r.body);
  const nlohmann::json answer = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  HPO_CHECK_MSG(!answer.is_discarded(), action + " answered something that is not JSON: " + r.body);
  if (r.status == 200) {
    HPO_CHECK_MSG(answer.is_object(),
                  action + " answered 200 with a JSON that is not an object: " + r.body);
  } else {
    HPO_CHECK_MSG(answer.is_object() && answer.contains("__type") && answer["__type"].is_string() &&
                      answer.contains("message") && answer["message"].is_string() &&
                      !answer["message"].get<std::string>().empty(),
                  action + " answered an error without __type and message: " + r.body);
  }
  return 0;
}
