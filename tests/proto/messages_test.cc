#include "proto/messages.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <msgpack.hpp>

namespace hpo::proto::wire {
namespace {

constexpr char kTrial[] = "mnist-tuning-003-9f8e7d6c";
constexpr int64_t kNow = 1764370000123;

// ---- samples: one of each message, every field set --------------------------------------------

Register SampleRegister() {
  Register m;
  m.worker_id = "gpu-node-07";
  m.host = "10.0.3.17";
  m.instance_type = "ml.p4d.24xlarge";
  m.instance_group = "train";
  m.labels = {{"rack", "r12"}, {"zone", "a"}};
  m.gpus = {{0, "GPU-1a2b3c4d", "NVIDIA H200", 143771}, {1, "GPU-5e6f7a8b", "NVIDIA H200", 143771}};
  m.cpus = 96;
  m.memory_mb = 1048576;
  m.slots = 8;
  m.spot = true;
  m.running = {{kTrial, 2}, {"mnist-tuning-001-0a1b2c3d", 1}};
  m.disk_mb = 3 << 20;
  m.session = 0x5eed0001;
  m.work_dir = "/var/lib/hpo-worker";
  m.no_s3 = true;
  return m;
}

RegisterAck SampleRegisterAck() {
  RegisterAck m;
  m.accepted = true;
  m.reason = "re-attached 1 of 2 attempts";
  m.heartbeat_interval_ms = 5000;
  m.lease_ms = 30000;
  m.stop = {{"mnist-tuning-001-0a1b2c3d", 1}};
  return m;
}

Heartbeat SampleHeartbeat() {
  Heartbeat m;
  m.worker_id = "gpu-node-07";
  m.seq = 42;
  m.free_slots = 7;
  m.running = {{kTrial, 2}};
  m.sent_ms = 1764633600000;
  m.disk_mb = 512 * 1024;
  return m;
}

AssignTrial SampleAssignTrial() {
  AssignTrial m;
  m.trial = kTrial;
  m.attempt = 2;
  m.tuning_job = "mnist-tuning";
  m.definition_name = "resnet";
  m.hyperparameters = {{"learning_rate", "0.010"},
                       {"epochs", "20"},
                       {"_tuning_objective_metric", "validation:accuracy"}};
  m.image = "123456789012.dkr.ecr.us-west-2.amazonaws.com/train:latest";
  m.metric_definitions = {{"validation:accuracy", "val_acc=([0-9.]+)"},
                          {"train:loss", "loss=([0-9.eE+-]+)"}};
  m.objective_metric = "validation:accuracy";
  m.environment = {{"NCCL_DEBUG", "INFO"}, {"OMP_NUM_THREADS", "8"}};
  m.max_runtime_s = 3600;
  m.grace_period_s = 120;
  m.hosts = {"algo-1", "algo-2", "algo-3"};
  m.current_host = "algo-2";
  m.instance_type = "ml.p4d.24xlarge";
  m.instance_group = "gpu";
  m.instance_groups = {{"gpu", "ml.p4d.24xlarge", {"algo-1", "algo-2"}},
                       {"cpu", "ml.c5.18xlarge", {"algo-3"}}};
  m.gpus = {0, 1, 2, 3};
  m.input_mode = "File";
  m.channels = {{"train", "s3://bucket/mnist/train/", "application/x-recordio", "FastFile",
                 "S3Prefix", "ShardedByS3Key", "Gzip", "RecordIO"},
                {"validation", "file:///data/mnist/val/", "", "", "", "", "", ""}};
  m.output_path = "s3://bucket/output/";
  m.checkpoint_uri = "s3://bucket/checkpoints/mnist-tuning-003-9f8e7d6c/";
  m.checkpoint_local_path = "/opt/ml/checkpoints";
  m.spec_json = R"({"DefinitionName":"resnet","StaticHyperParameters":{"epochs":"20"}})";
  m.after_trial = "mnist-tuning-002-1a2b3c4d";
  m.after_attempt = 1;
  m.host_addresses = {{"algo-1", "10.0.0.1"}, {"algo-2", "gpu-node-07"}, {"algo-3", "10.0.0.3"}};
  return m;
}

TrialStarted SampleTrialStarted() {
  TrialStarted m;
  m.trial = kTrial;
  m.attempt = 2;
  m.worker_id = "gpu-node-07";
  m.started_at_ms = kNow;
  return m;
}

MetricPoints SampleMetricPoints() {
  MetricPoints m;
  m.trial = kTrial;
  m.attempt = 2;
  m.seq = 3;
  m.points = {{"train:loss", 0.25, kNow, 4},
              {"validation:accuracy", 0.9, kNow + 1, 1},
              {"train:loss", -1.5e-300, kNow + 2, 5}};
  return m;
}

TrialExited SampleTrialExited() {
  TrialExited m;
  m.trial = kTrial;
  m.attempt = 2;
  m.seq = 3;
  m.status = "Failed";
  m.secondary_status = "Failed";
  m.exit_code = 137;
  m.signal = 9;
  m.failure_reason = "AlgorithmError: CUDA out of memory; ünïcödé kept";
  m.ended_at_ms = kNow + 60000;
  m.final_metrics = {{"train:loss", 0.125}, {"validation:accuracy", 0.9}};
  return m;
}

StopTrial SampleStopTrial() {
  StopTrial m;
  m.trial = kTrial;
  m.attempt = 2;
  m.reason = "early stopping: below the median of completed trials at step 5";
  m.grace_period_s = 120;
  return m;
}

InterruptionNotice SampleInterruptionNotice() {
  InterruptionNotice m;
  m.worker_id = "gpu-node-07";
  m.reason = "spot instance-action: terminate";
  m.deadline_ms = kNow + 120000;
  m.planned = true;
  return m;
}

LogLines SampleLogLines() {
  LogLines m;
  m.trial = kTrial;
  m.attempt = 2;
  m.seq = 4;
  m.first_line = 100;
  m.lines = {"[0]#011train-rmse:0.5", "epoch 1 done"};
  return m;
}

HeldTrials SampleHeldTrials() {
  HeldTrials m;
  m.worker_id = "gpu-node-07";
  m.trials = {kTrial, "other-job-005-1a2b3c4d"};
  return m;
}

ReleaseTrials SampleReleaseTrials() {
  ReleaseTrials m;
  m.trials = {kTrial};
  return m;
}

TrialStaging SampleTrialStaging() {
  TrialStaging m;
  m.trial = kTrial;
  m.attempt = 2;
  m.worker_id = "gpu-node-07";
  m.status = "Downloading";
  m.what = "channels train, validation; checkpoints";
  return m;
}

GangPeersEnded SampleGangPeersEnded() {
  GangPeersEnded m;
  m.trial = kTrial;
  m.attempt = 3;
  return m;
}

DiscardHandOver SampleDiscardHandOver() {
  DiscardHandOver m;
  m.trial = kTrial;
  m.attempt = 2;
  m.output_path = "s3://bucket/prefix";
  return m;
}

Ack SampleAck() {
  Ack m;
  m.type = static_cast<uint16_t>(MsgType::kMetricPoints);
  m.trial = kTrial;
  m.attempt = 2;
  m.seq = 3;
  return m;
}

Error SampleError() {
  Error m;
  m.code = "InvalidField";
  m.message = "AssignTrial.attempt: must be >= 1";
  m.in_reply_to = static_cast<uint16_t>(MsgType::kAssignTrial);
  return m;
}

std::vector<Message> AllSamples() {
  return {SampleRegister(),    SampleRegisterAck(),  SampleHeartbeat(),
          SampleAssignTrial(), SampleTrialStarted(), SampleMetricPoints(),
          SampleTrialExited(), SampleStopTrial(),    SampleInterruptionNotice(),
          SampleAck(),         SampleError(),        SampleLogLines(),
          SampleHeldTrials(),  SampleReleaseTrials(), SampleTrialStaging(),
          SampleGangPeersEnded(), SampleDiscardHandOver()};
}

// Names of the fields of `m` that still hold their default value.
template <class T>
std::vector<std::string> FieldsLeftAtDefault(const T& m) {
  const T fresh{};
  std::vector<std::string> out;
  auto a = m.WireFields();
  auto b = fresh.WireFields();
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((std::get<2 * I + 1>(a) == std::get<2 * I + 1>(b) ? void(out.emplace_back(std::get<2 * I>(a)))
                                                       : void()),
     ...);
  }
  (std::make_index_sequence<std::tuple_size_v<decltype(a)> / 2>{});
  return out;
}

template <class T>
std::vector<std::string> FieldNames(const T& m) {
  std::vector<std::string> out;
  auto fields = m.WireFields();
  [&]<size_t... I>(std::index_sequence<I...>) { (out.emplace_back(std::get<2 * I>(fields)), ...); }
  (std::make_index_sequence<std::tuple_size_v<decltype(fields)> / 2>{});
  return out;
}

// ---- frames and bodies --------------------------------------------------------------------------

std::string TypeFrame(uint16_t type) {
  return std::string{static_cast<char>(type >> 8), static_cast<char>(type & 0xff)};
}

std::vector<std::string> Frames(uint16_t type, std::string body) {
  return {TypeFrame(type), std::move(body)};
}
std::vector<std::string> Frames(MsgType type, std::string body) {
  return Frames(static_cast<uint16_t>(type), std::move(body));
}

// The encoding of a sample with its top-level map edited: fields replaced, removed or added.
class BodyEditor {
 public:
  explicit BodyEditor(const Message& m) : type_(TypeOf(m)) {
    const std::vector<std::string> frames = EncodeFrames(m);
    handles_.push_back(msgpack::unpack(frames[1].data(), frames[1].size()));
    const msgpack::object& body = handles_.back().get();
    for (uint32_t i = 0; i < body.via.map.size; ++i) {
      const msgpack::object_kv& kv = body.via.map.ptr[i];
      entries_.emplace_back(kv.key.as<std::string>(), kv.val);
    }
  }
  template <class T>
  BodyEditor& Set(const std::string& key, const T& value) {
    return SetObject(key, msgpack::object(value, zone_));
  }
  BodyEditor& SetObject(const std::string& key, msgpack::object value) {
    for (auto& [k, v] : entries_) {
      if (k == key) {
        v = value;
        return *this;
      }
    }
    entries_.emplace_back(key, value);
    return *this;
  }
  // The value given as raw msgpack bytes.
  BodyEditor& SetRaw(const std::string& key, const std::string& packed) {
    handles_.push_back(msgpack::unpack(packed.data(), packed.size()));
    return SetObject(key, handles_.back().get());
  }
  BodyEditor& Remove(const std::string& key) {
    std::erase_if(entries_, [&](const auto& e) { return e.first == key; });
    return *this;
  }
  template <class T>
  BodyEditor& Append(const std::string& key, const T& value) {
    entries_.emplace_back(key, msgpack::object(value, zone_));
    return *this;
  }
  std::string Body() const {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_map(static_cast<uint32_t>(entries_.size()));
    for (const auto& [k, v] : entries_) {
      packer.pack(k);
      packer.pack(v);
    }
    return std::string(buffer.data(), buffer.size());
  }
  std::vector<std::string> Frames() const {
    return {TypeFrame(static_cast<uint16_t>(type_)), Body()};
  }

 private:
  MsgType type_;
  msgpack::zone zone_;
  std::vector<msgpack::object_handle> handles_;
  std::vector<std::pair<std::string, msgpack::object>> entries_;
};

// A string of exactly the bytes of a literal, NULs included.
template <size_t N>
std::string Raw(const char (&bytes)[N]) {
  return std::string(bytes, N - 1);
}

template <class F>
std::string Packed(F write) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  write(packer);
  return std::string(buffer.data(), buffer.size());
}

// Decoding fails with `code`, a message containing `needle`, and an Error reply that is itself
// a valid message.
testing::AssertionResult Rejected(const std::vector<std::string>& frames, std::string_view needle,
                                  std::string_view code = error_code::kInvalidField) {
  Error reply;
  Result<Message> r = DecodeFrames(frames, &reply);
  if (r.ok()) return testing::AssertionFailure() << "decoded a " << MsgTypeName(TypeOf(*r));
  const StatusCode want = code == error_code::kProtocolVersionMismatch
                              ? StatusCode::kFailedPrecondition
                              : StatusCode::kInvalidArgument;
  if (r.status().code() != want)
    return testing::AssertionFailure() << "status " << r.status().ToString();
  if (r.status().message().find(needle) == std::string::npos) {
    return testing::AssertionFailure()
           << "message \"" << r.status().message() << "\" lacks \"" << needle << "\"";
  }
  if (reply.code != code)
    return testing::AssertionFailure() << "reply code " << reply.code << ", want " << code;
  if (reply.message != r.status().message())
    return testing::AssertionFailure() << "reply message " << reply.message;
  if (Status s = reply.Validate(); !s.ok())
    return testing::AssertionFailure() << "reply invalid: " << s.ToString();
  return testing::AssertionSuccess() << r.status().message();
}

// Encodes a message as built (EncodeFrames does not validate) and expects decoding to refuse it.
testing::AssertionResult RejectedMessage(const Message& m, std::string_view needle) {
  testing::AssertionResult r = Rejected(EncodeFrames(m), needle);
  if (r) {
    Status direct = Validate(m);
    if (direct.ok() || direct.message().find(needle) == std::string::npos) {
      return testing::AssertionFailure()
             << "Validate() disagrees with DecodeFrames: " << direct.ToString();
    }
  }
  return r;
}

// ---- round trips
// ---------------------------------------------------------------------------------

TEST(WireMessages, SamplesSetEveryFieldToANonDefaultValue) {
  for (const Message& m : AllSamples()) {
    std::visit(
        [](const auto& msg) {
          std::vector<std::string> unset = FieldsLeftAtDefault(msg);
          std::erase(unset, "protocol_version");  // its default is the only valid value
          EXPECT_TRUE(unset.empty())
              << MsgTypeName(TypeOf(msg)) << " leaves " << testing::PrintToString(unset);
        },
        m);
  }
}

TEST(WireMessages, EveryMessageTypeRoundTripsWithEveryFieldSet) {
  for (const Message& m : AllSamples()) {
    SCOPED_TRACE(MsgTypeName(TypeOf(m)));
    ASSERT_TRUE(Validate(m).ok()) << Validate(m).ToString();
    const std::vector<std::string> frames = EncodeFrames(m);
    ASSERT_EQ(frames.size(), 2u);
    Error reply{"untouched", "untouched", 99};
    Result<Message> decoded = DecodeFrames(frames, &reply);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(TypeOf(*decoded), TypeOf(m));
    EXPECT_TRUE(*decoded == m);
    EXPECT_EQ(reply, (Error{"untouched", "untouched", 99}))
        << "the reply is only written on failure";
    // The string_view overload agrees.
    Result<Message> again = DecodeFrames(std::string_view(frames[0]), std::string_view(frames[1]));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(*again == m);
  }
}

TEST(WireMessages, TypeFrameIsTheMsgTypeAsTwoBigEndianBytes) {
  const std::vector<Message> samples = AllSamples();
  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(TypeOf(samples[i])), i + 1);
    EXPECT_EQ(EncodeFrames(samples[i])[0], TypeFrame(static_cast<uint16_t>(i + 1)));
  }
  EXPECT_EQ(EncodeFrames(SampleError())[0], std::string("\x00\x0b", 2));
  EXPECT_STREQ(MsgTypeName(MsgType::kInterruptionNotice), "InterruptionNotice");
  EXPECT_STREQ(MsgTypeName(static_cast<MsgType>(77)), "Invalid");
}

TEST(WireMessages, BodyIsAMsgpackMapKeyedByEveryFieldName) {
  for (const Message& m : AllSamples()) {
    std::visit(
        [](const auto& msg) {
          const std::vector<std::string> frames = EncodeFrames(msg);
          msgpack::object_handle h = msgpack::unpack(frames[1].data(), frames[1].size());
          ASSERT_EQ(h.get().type, msgpack::type::MAP);
          std::vector<std::string> keys;
          for (uint32_t i = 0; i < h.get().via.map.size; ++i)
            keys.push_back(h.get().via.map.ptr[i].key.as<std::string>());
          EXPECT_EQ(keys, FieldNames(msg)) << MsgTypeName(TypeOf(msg));
        },
        m);
  }
}

TEST(WireMessages, UnknownKeysAreIgnoredAtTopLevelAndInNestedRecords) {
  const std::string nested_point = Packed([](auto& p) {
    p.pack_array(1);
    p.pack_map(5);
    p.pack(std::string("name"));
    p.pack(std::string("train:loss"));
    p.pack(std::string("value"));
    p.pack(0.5);
    p.pack(std::string("timestamp_ms"));
    p.pack(kNow);
    p.pack(std::string("step"));
    p.pack(0);
    p.pack(std::string("added_in_v1_1"));
    p.pack_array(2);
    p.pack(1);
    p.pack(std::string("x"));
  });
  BodyEditor edit(SampleMetricPoints());
  edit.Set("priority", 7)
      .Set("future_map", std::map<std::string, int>{{"a", 1}})
      .SetRaw("points", nested_point);
  Result<Message> r = DecodeFrames(edit.Frames());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  MetricPoints want = SampleMetricPoints();
  want.points = {{"train:loss", 0.5, kNow, 0}};
  EXPECT_TRUE(std::get<MetricPoints>(*r) == want);
}

TEST(WireMessages, IntegersAreAcceptedWhereANumberIsExpected) {
  BodyEditor edit(SampleTrialExited());
  edit.SetRaw("final_metrics", Packed([](auto& p) {
                p.pack_array(1);
                p.pack_map(2);
                p.pack(std::string("name"));
                p.pack(std::string("epochs_done"));
                p.pack(std::string("value"));
                p.pack(-12);
              }));
  Result<Message> r = DecodeFrames(edit.Frames());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::get<TrialExited>(*r).final_metrics.at(0).value, -12.0);
}

// ---- frames
// --------------------------------------------------------------------------------------

TEST(WireDecode, RejectsAMessageWithOtherThanTwoFrames) {
  const std::vector<std::string> good = EncodeFrames(SampleHeartbeat());
  EXPECT_TRUE(Rejected({}, "must be 2 frames (type, body), got 0", error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected({good[0]}, "got 1", error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected({good[0], good[1], ""}, "got 3", error_code::kMalformedMessage));
  Error reply;
  (void)DecodeFrames({good[0]}, &reply);
  EXPECT_EQ(reply.in_reply_to, static_cast<uint16_t>(MsgType::kHeartbeat));
}

TEST(WireDecode, RejectsATypeFrameThatIsNotTwoBytes) {
  const std::string body = EncodeFrames(SampleHeartbeat())[1];
  EXPECT_TRUE(
      Rejected({"", body}, "type frame must be 2 bytes, got 0", error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected({"\x03", body}, "got 1", error_code::kMalformedMessage));
  EXPECT_TRUE(
      Rejected({std::string("\x00\x00\x03", 3), body}, "got 3", error_code::kMalformedMessage));
}

TEST(WireDecode, RejectsUnknownMessageTypesAndSaysWhichOneInTheReply) {
  const std::string body = EncodeFrames(SampleHeartbeat())[1];
  for (uint16_t type : {uint16_t{0}, uint16_t{18}, uint16_t{0x0100}, uint16_t{0xffff}}) {
    EXPECT_TRUE(Rejected(Frames(type, body), "unknown message type " + std::to_string(type),
                         error_code::kUnknownMessageType));
    Error reply;
    (void)DecodeFrames(Frames(type, body), &reply);
    EXPECT_EQ(reply.in_reply_to, type);
  }
}

TEST(WireValidate, HeldAndReleasedTrialsAreOneToMaxUniqueTrainingJobNames) {
  HeldTrials h = SampleHeldTrials();
  EXPECT_TRUE(h.Validate().ok()) << h.Validate().message();
  h.trials.clear();
  EXPECT_NE(h.Validate().message().find("HeldTrials.trials: must not be empty"), std::string::npos) << h.Validate().message();
  h = SampleHeldTrials();
  h.trials.push_back(kTrial);
  EXPECT_NE(h.Validate().message().find("HeldTrials.trials[2]: duplicate"), std::string::npos) << h.Validate().message();
  h = SampleHeldTrials();
  h.trials[1] = "../etc";  // a name the worker would join to its work directory
  EXPECT_NE(h.Validate().message().find("HeldTrials.trials[1]"), std::string::npos) << h.Validate().message();
  h = SampleHeldTrials();
  h.worker_id = "";
  EXPECT_NE(h.Validate().message().find("HeldTrials.worker_id"), std::string::npos) << h.Validate().message();
  ReleaseTrials r;
  for (size_t i = 0; i <= limits::kMaxHeldTrials; ++i) r.trials.push_back("t" + std::to_string(i));
  EXPECT_NE(r.Validate().message().find("ReleaseTrials.trials: must have at most 1024 entries"), std::string::npos)
      << r.Validate().message();
  r.trials.pop_back();
  EXPECT_TRUE(r.Validate().ok()) << r.Validate().message();
  r.trials[0] = "a/b";
  EXPECT_NE(r.Validate().message().find("ReleaseTrials.trials[0]"), std::string::npos) << r.Validate().message();
}

TEST(WireValidate, TrialStagingNamesOneOfSageMakersDownloadOrUploadStatusesAndWhatIsMoved) {
  TrialStaging m = SampleTrialStaging();
  EXPECT_TRUE(m.Validate().ok());
  m.status = "DownloadingTrainingImage";
  EXPECT_TRUE(m.Validate().ok());
  m.status = "Uploading";
  EXPECT_TRUE(m.Validate().ok());
  m.status = "Training";
  EXPECT_EQ(m.Validate().message(),
            "TrialStaging.status: must be Downloading, DownloadingTrainingImage or Uploading, got \"Training\"");
  m = SampleTrialStaging();
  m.what.clear();
  EXPECT_NE(m.Validate().message().find("TrialStaging.what"), std::string::npos) << m.Validate().message();
  m = SampleTrialStaging();
  m.attempt = 0;
  EXPECT_NE(m.Validate().message().find("TrialStaging.attempt"), std::string::npos) << m.Validate().message();
}

TEST(WireValidate, GangPeersEndedNamesOneAttemptOfOneTrainingJob) {
  GangPeersEnded m = SampleGangPeersEnded();
  EXPECT_TRUE(m.Validate().ok());
  m.attempt = 0;
  EXPECT_NE(m.Validate().message().find("GangPeersEnded.attempt"), std::string::npos) << m.Validate().message();
  m = SampleGangPeersEnded();
  m.trial = "no spaces allowed";
  EXPECT_NE(m.Validate().message().find("GangPeersEnded.trial"), std::string::npos) << m.Validate().message();
}

TEST(WireValidate, DiscardHandOverNamesOneAttemptAndAnOutputPath) {
  DiscardHandOver m = SampleDiscardHandOver();
  EXPECT_TRUE(m.Validate().ok());
  m.attempt = 0;
  EXPECT_NE(m.Validate().message().find("DiscardHandOver.attempt"), std::string::npos) << m.Validate().message();
  m = SampleDiscardHandOver();
  m.output_path.clear();
  EXPECT_NE(m.Validate().message().find("DiscardHandOver.output_path"), std::string::npos) << m.Validate().message();
  m.output_path = std::string(1025, 'x');
  EXPECT_NE(m.Validate().message().find("DiscardHandOver.output_path"), std::string::npos) << m.Validate().message();
}

TEST(WireValidate, LogLinesNeedsLinesWithinTheirBounds) {
  LogLines m = SampleLogLines();
  EXPECT_TRUE(m.Validate().ok());
  m.lines.clear();
  EXPECT_NE(m.Validate().message().find("LogLines.lines: must not be empty"), std::string::npos)
      << m.Validate().message();
  m = SampleLogLines();
  m.lines[1] = std::string(limits::kMaxLogLineBytes + 1, 'x');
  EXPECT_NE(m.Validate().message().find("LogLines.lines[1]"), std::string::npos) << m.Validate().message();
  m = SampleLogLines();
  m.seq = 0;
  EXPECT_NE(m.Validate().message().find("LogLines.seq"), std::string::npos) << m.Validate().message();
}

// ---- bodies that are not one bounded msgpack map -----------------------------------------------

TEST(WireDecode, RejectsABodyThatIsNotMsgpack) {
  EXPECT_TRUE(Rejected(Frames(MsgType::kHeartbeat, "\xc1"), "Heartbeat: body is not valid msgpack",
                       error_code::kMalformedMessage));
}

TEST(WireDecode, RejectsAnEmptyBody) {
  EXPECT_TRUE(
      Rejected(Frames(MsgType::kAck, ""), "Ack: body is truncated", error_code::kMalformedMessage));
}

TEST(WireDecode, RejectsEveryTruncationOfAValidBody) {
  const std::vector<std::string> frames = EncodeFrames(SampleAssignTrial());
  for (size_t n = 0; n < frames[1].size(); ++n) {
    ASSERT_TRUE(Rejected(Frames(MsgType::kAssignTrial, frames[1].substr(0, n)),
                         "AssignTrial: body is truncated", error_code::kMalformedMessage))
        << "prefix of " << n << " bytes";
  }
}

TEST(WireDecode, RejectsTrailingBytesAfterTheMap) {
  const std::string body = EncodeFrames(SampleStopTrial())[1];
  EXPECT_TRUE(Rejected(Frames(MsgType::kStopTrial, body + "\xc0\xc0"),
                       "StopTrial: 2 trailing bytes", error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected(Frames(MsgType::kStopTrial, body + body), "trailing bytes",
                       error_code::kMalformedMessage));
}

TEST(WireDecode, RejectsABodyThatIsNotAMap) {
  EXPECT_TRUE(Rejected(Frames(MsgType::kTrialStarted, Packed([](auto& p) { p.pack_array(0); })),
                       "TrialStarted: body must be a msgpack map, got an array",
                       error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected(Frames(MsgType::kTrialStarted, Packed([](auto& p) { p.pack(5); })),
                       "got an integer", error_code::kMalformedMessage));
}

TEST(WireDecode, RejectsABodyLargerThanTheLimit) {
  const std::string big(limits::kMaxBodyBytes + 1, '\0');
  EXPECT_TRUE(Rejected(Frames(MsgType::kAssignTrial, big), "exceeds the limit",
                       error_code::kMalformedMessage));
}

TEST(WireDecode, RejectsHugeDeclaredLengthsWithoutAllocatingThem) {
  const auto t0 = std::chrono::steady_clock::now();
  // map{"trial": str32 of 4 GiB - 1}, then 3 bytes: strings, binary and extension values are
  // never read before all their bytes are there.
  EXPECT_TRUE(Rejected(Frames(MsgType::kAssignTrial, Raw("\x81\xa5trial\xdb\xff\xff\xff\xff"
                                                         "abc")),
                       "AssignTrial: body is truncated", error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected(Frames(MsgType::kError, Raw("\x81\xa1x\xc6\xff\xff\xff\xff")),  // bin32
                       "Error: body is truncated", error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected(Frames(MsgType::kError, Raw("\x81\xa1x\xc9\xff\xff\xff\xff\x01")),  // ext32
                       "Error: body is truncated", error_code::kMalformedMessage));
  // Arrays and maps are refused at their header.
  EXPECT_TRUE(Rejected(Frames(MsgType::kMetricPoints, Raw("\x81\xa6points\xdd\xff\xff\xff\xff")),
                       "MetricPoints: body is not valid msgpack within the limits",
                       error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected(Frames(MsgType::kMetricPoints, Raw("\xdf\xff\xff\xff\xff")),
                       "within the limits", error_code::kMalformedMessage));
  // A string one byte over the limit, all of it present.
  EXPECT_TRUE(Rejected(BodyEditor(SampleAssignTrial())
                           .Set("spec_json", std::string(limits::kMaxStringBytes + 1, ' '))
                           .Frames(),
                       "AssignTrial: body is not valid msgpack within the limits",
                       error_code::kMalformedMessage));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
}

TEST(WireDecode, RejectsNestingDeeperThanTheLimitEvenUnderAnUnknownKey) {
  const auto nested = [](int depth) {
    return Packed([&](auto& p) {
      for (int i = 0; i < depth; ++i) p.pack_array(1);
      p.pack(0);
    });
  };
  EXPECT_TRUE(
      DecodeFrames(BodyEditor(SampleHeartbeat()).SetRaw("extension", nested(10)).Frames()).ok());
  EXPECT_TRUE(Rejected(BodyEditor(SampleHeartbeat()).SetRaw("extension", nested(40)).Frames(),
                       "Heartbeat: body is not valid msgpack within the limits",
                       error_code::kMalformedMessage));
}

// ---- fields: types, presence, keys --------------------------------------------------------------

TEST(WireDecode, RejectsAFieldOfTheWrongType) {
  EXPECT_TRUE(Rejected(BodyEditor(SampleAssignTrial()).Set("attempt", std::string("2")).Frames(),
                       "AssignTrial.attempt: expected an unsigned integer, got a string"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleRegister()).Set("spot", 1).Frames(),
                       "Register.spot: expected a boolean, got an integer"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleAssignTrial()).Set("hosts", std::string("algo-1")).Frames(),
                       "AssignTrial.hosts: expected an array, got a string"));
  EXPECT_TRUE(
      Rejected(BodyEditor(SampleAssignTrial()).Set("environment", std::vector<int>{1}).Frames(),
               "AssignTrial.environment: expected a map, got an array"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleAssignTrial())
                           .Set("hyperparameters", std::map<std::string, double>{{"lr", 0.1}})
                           .Frames(),
                       "AssignTrial.hyperparameters[\"lr\"]: expected a string, got a float"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleRegister()).Set("gpus", std::vector<int>{0}).Frames(),
                       "Register.gpus[0]: expected a map, got an integer"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleMetricPoints())
                           .SetRaw("points", Packed([](auto& p) {
                                     p.pack_array(1);
                                     p.pack_map(4);
                                     p.pack(std::string("name"));
                                     p.pack(std::string("loss"));
                                     p.pack(std::string("value"));
                                     p.pack(std::string("0.5"));
                                     p.pack(std::string("timestamp_ms"));
                                     p.pack(0);
                                     p.pack(std::string("step"));
                                     p.pack(0);
                                   }))
                           .Frames(),
                       "MetricPoints.points[0].value: expected a number, got a string"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleError()).SetObject("message", msgpack::object()).Frames(),
                       "Error.message: expected a string, got nil"));
}

TEST(WireDecode, RejectsAMissingRequiredFieldAtAnyDepth) {
  EXPECT_TRUE(Rejected(BodyEditor(SampleAssignTrial()).Remove("trial").Frames(),
                       "AssignTrial.trial: required field is missing"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleAssignTrial()).Remove("spec_json").Frames(),
                       "AssignTrial.spec_json: required field is missing"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleMetricPoints())
                           .SetRaw("points", Packed([](auto& p) {
                                     p.pack_array(1);
                                     p.pack_map(3);
                                     p.pack(std::string("name"));
                                     p.pack(std::string("loss"));
                                     p.pack(std::string("timestamp_ms"));
                                     p.pack(0);
                                     p.pack(std::string("step"));
                                     p.pack(0);
                                   }))
                           .Frames(),
                       "MetricPoints.points[0].value: required field is missing"));
  EXPECT_TRUE(Rejected(Frames(MsgType::kInterruptionNotice, Packed([](auto& p) { p.pack_map(0); })),
                       "InterruptionNotice.worker_id: required field is missing"));
}

TEST(WireDecode, RejectsANegativeNumberInAnUnsignedField) {
  EXPECT_TRUE(Rejected(BodyEditor(SampleHeartbeat()).Set("seq", -1).Frames(),
                       "Heartbeat.seq: must be >= 0, got -1"));
}

TEST(WireDecode, RejectsAnIntegerTooLargeForItsField) {
  EXPECT_TRUE(Rejected(BodyEditor(SampleAssignTrial()).Set("attempt", uint64_t{1} << 32).Frames(),
                       "AssignTrial.attempt: 4294967296 is out of range (at most 4294967295)"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleAck()).Set("type", 70000).Frames(),
                       "Ack.type: 70000 is out of range"));
  EXPECT_TRUE(
      Rejected(BodyEditor(SampleTrialExited()).Set("exit_code", int64_t{-3000000000}).Frames(),
               "TrialExited.exit_code: -3000000000 is out of range"));
}

TEST(WireDecode, RejectsDuplicateKeys) {
  EXPECT_TRUE(
      Rejected(BodyEditor(SampleStopTrial()).Append("trial", std::string("other-trial")).Frames(),
               "StopTrial[\"trial\"]: duplicate key"));
  EXPECT_TRUE(
      Rejected(BodyEditor(SampleStopTrial()).Append("unknown", 1).Append("unknown", 2).Frames(),
               "duplicate key"));
}

TEST(WireDecode, RejectsMapKeysThatAreNotStrings) {
  const std::string body = Packed([](auto& p) {
    p.pack_map(1);
    p.pack(7);
    p.pack(7);
  });
  EXPECT_TRUE(Rejected(Frames(MsgType::kHeartbeat, body),
                       "Heartbeat: map key #0 is an integer, not a string"));
}

TEST(WireDecode, RejectsStringsThatAreNotUtf8OrContainNul) {
  EXPECT_TRUE(
      Rejected(BodyEditor(SampleStopTrial()).Set("reason", std::string("bad \xff byte")).Frames(),
               "StopTrial.reason: must be valid UTF-8 without NUL bytes"));
  EXPECT_TRUE(
      Rejected(BodyEditor(SampleStopTrial()).Set("reason", std::string("nul\0byte", 8)).Frames(),
               "StopTrial.reason: must be valid UTF-8"));
  EXPECT_TRUE(Rejected(
      BodyEditor(SampleStopTrial()).Set("reason", std::string("\xed\xa0\x80 surrogate")).Frames(),
      "StopTrial.reason: must be valid UTF-8"));
  EXPECT_TRUE(Rejected(BodyEditor(SampleAssignTrial())
                           .Set("environment", std::map<std::string, std::string>{{"K\xc0", "v"}})
                           .Frames(),
                       "key must be valid UTF-8"));
}

// ---- values
// --------------------------------------------------------------------------------------

TEST(WireValidate, RejectsAttemptZero) {
  AssignTrial m = SampleAssignTrial();
  m.attempt = 0;
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.attempt: must be >= 1"));
  TrialStarted s = SampleTrialStarted();
  s.attempt = 0;
  EXPECT_TRUE(RejectedMessage(s, "TrialStarted.attempt: must be >= 1"));
  Register r = SampleRegister();
  r.running[1].attempt = 0;
  EXPECT_TRUE(RejectedMessage(r, "Register.running[1].attempt: must be >= 1"));
}

TEST(WireValidate, RejectsTrialNamesThatAreNotSageMakerNamesSoNoneCanEscapeADirectory) {
  for (const char* bad : {"", "../etc", "a/b", "-lead", "trail-", "has space", "dot.ted",
                          "x1234567890123456789012345678901234567890123456789012345678901234"}) {
    StopTrial m = SampleStopTrial();
    m.trial = bad;
    EXPECT_TRUE(RejectedMessage(m, "StopTrial.trial: ")) << bad;
  }
  StopTrial ok = SampleStopTrial();
  ok.trial = "a--b-9";
  EXPECT_TRUE(Validate(ok).ok());
}

TEST(WireValidate, RejectsAnEmptyOrOddWorkerId) {
  Heartbeat m = SampleHeartbeat();
  m.worker_id = "";
  EXPECT_TRUE(RejectedMessage(m, "Heartbeat.worker_id: must not be empty"));
  m.worker_id = "node 7";
  EXPECT_TRUE(
      RejectedMessage(m, "Heartbeat.worker_id: must be 1-128 characters from [A-Za-z0-9._:@-]"));
}

TEST(WireValidate, RejectsNonFiniteMetricValues) {
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    MetricPoints m = SampleMetricPoints();
    m.points[1].value = bad;
    EXPECT_TRUE(RejectedMessage(m, "MetricPoints.points[1].value: must be finite"));
    TrialExited e = SampleTrialExited();
    e.final_metrics[0].value = bad;
    // A final value may be NaN: the metric's last match was "nan" (no final value); not infinite.
    if (std::isnan(bad)) {
      EXPECT_TRUE(e.Validate().ok()) << e.Validate().ToString();
    } else {
      EXPECT_TRUE(RejectedMessage(e, "TrialExited.final_metrics[0].value: must be finite"));
    }
  }
}

TEST(WireValidate, RejectsMoreThanTenThousandPointsOrNoneInOneBatch) {
  MetricPoints m = SampleMetricPoints();
  m.points.clear();
  for (uint32_t i = 0; i < limits::kMaxPointsPerBatch; ++i)
    m.points.push_back({"loss", 1.0 / (i + 1), kNow, i});
  Result<Message> full = DecodeFrames(EncodeFrames(m));
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  m.points.push_back({"loss", 0, kNow, limits::kMaxPointsPerBatch});
  EXPECT_TRUE(
      RejectedMessage(m, "MetricPoints.points: must have at most 10000 entries, got 10001"));
  m.points.clear();
  EXPECT_TRUE(RejectedMessage(m, "MetricPoints.points: must not be empty"));
}

TEST(WireValidate, RejectsMetricPointsWithSeqZero) {
  MetricPoints m = SampleMetricPoints();
  m.seq = 0;
  EXPECT_TRUE(RejectedMessage(m, "MetricPoints.seq: must be >= 1"));
}

TEST(WireValidate, RejectsStepsThatDoNotIncreasePerMetricWithinABatch) {
  MetricPoints m = SampleMetricPoints();
  m.points[2].step = m.points[0].step;
  EXPECT_TRUE(RejectedMessage(m, "MetricPoints.points[2].step: must be > 4"));
}

TEST(WireValidate, RejectsAFailureReasonLongerThan1024Characters) {
  TrialExited m = SampleTrialExited();
  m.failure_reason = std::string(1025, 'x');
  EXPECT_TRUE(
      RejectedMessage(m, "TrialExited.failure_reason: must be at most 1024 characters, got 1025"));
  m.failure_reason.clear();
  for (int i = 0; i < 1024; ++i) m.failure_reason += "\xc3\xa9";  // 1024 characters, 2048 bytes
  EXPECT_TRUE(Validate(m).ok());
}

TEST(WireValidate, RejectsAFailedOrInfraErrorExitWithoutAFailureReason) {
  TrialExited m = SampleTrialExited();
  m.failure_reason = "";
  EXPECT_TRUE(RejectedMessage(m, "TrialExited.failure_reason: must not be empty"));
  m.status = "InfraError";
  EXPECT_TRUE(RejectedMessage(m, "TrialExited.failure_reason: must not be empty"));
  m.status = "Stopped";
  m.secondary_status = "MaxRuntimeExceeded";
  EXPECT_TRUE(Validate(m).ok());
}

TEST(WireValidate, RejectsUnknownExitStatusesAndInconsistentCompletion) {
  TrialExited m = SampleTrialExited();
  m.status = "Succeeded";
  EXPECT_TRUE(RejectedMessage(m,
                              "TrialExited.status: must be one of Completed, Failed, Stopped, "
                              "Interrupted, InfraError, got \"Succeeded\""));
  m = SampleTrialExited();
  m.secondary_status = "Training";
  EXPECT_TRUE(RejectedMessage(m, "TrialExited.secondary_status: must be one of"));
  m = SampleTrialExited();
  m.status = "Completed";
  EXPECT_TRUE(RejectedMessage(
      m,
      "TrialExited.secondary_status: must be \"Completed\" exactly when status is \"Completed\""));
  m.secondary_status = "Completed";
  EXPECT_TRUE(RejectedMessage(m, "TrialExited.exit_code: must be 0 with no signal"));
  m.exit_code = 0;
  m.signal = 0;
  EXPECT_TRUE(Validate(m).ok());
  m.exit_code = 256;
  EXPECT_TRUE(RejectedMessage(m, "TrialExited.exit_code: must be <= 255, got 256"));
}

TEST(WireValidate, RejectsAssignTrialWhoseHostsDoNotAddUp) {
  AssignTrial m = SampleAssignTrial();
  m.current_host = "algo-9";
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.current_host: \"algo-9\" must be one of hosts"));
  m = SampleAssignTrial();
  m.hosts.clear();
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.hosts: must not be empty"));
  m = SampleAssignTrial();
  m.hosts.push_back("algo-1");
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.hosts[3]: duplicate name \"algo-1\""));
  m = SampleAssignTrial();
  m.instance_groups[1].hosts.push_back("algo-1");
  EXPECT_TRUE(RejectedMessage(
      m,
      "AssignTrial.instance_groups[1].hosts[1]: \"algo-1\" is already in instance group \"gpu\""));
  m = SampleAssignTrial();
  m.instance_groups.pop_back();
  EXPECT_TRUE(
      RejectedMessage(m, "AssignTrial.instance_groups: host \"algo-3\" is in no instance group"));
  m = SampleAssignTrial();
  m.instance_group = "cpu";
  EXPECT_TRUE(RejectedMessage(
      m, "AssignTrial.instance_group: must be \"gpu\", the instance group of current_host"));
  m = SampleAssignTrial();
  m.instance_groups.clear();
  EXPECT_TRUE(RejectedMessage(
      m, "AssignTrial.instance_group: must be empty when instance_groups is empty"));
  m.instance_group.clear();
  EXPECT_TRUE(Validate(m).ok());
}

TEST(WireValidate, RejectsAnObjectiveMetricThatNoMetricDefinitionNames) {
  AssignTrial m = SampleAssignTrial();
  m.objective_metric = "validation:auc";
  EXPECT_TRUE(RejectedMessage(
      m, "AssignTrial.objective_metric: \"validation:auc\" must name one of metric_definitions"));
}

TEST(WireValidate, RejectsAssignTrialFieldsOutsideTheirDomains) {
  AssignTrial m = SampleAssignTrial();
  m.input_mode = "Stream";
  EXPECT_TRUE(RejectedMessage(
      m, "AssignTrial.input_mode: must be one of File, Pipe, FastFile, got \"Stream\""));
  m = SampleAssignTrial();
  m.channels[0].distribution_type = "Sharded";
  EXPECT_TRUE(RejectedMessage(m,
                              "AssignTrial.channels[0].distribution_type: must be one of "
                              "FullyReplicated, ShardedByS3Key (or empty)"));
  m = SampleAssignTrial();
  m.channels[1].name = "train";
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.channels[1].name: duplicate name \"train\""));
  m = SampleAssignTrial();
  m.environment["1BAD"] = "x";
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.environment[\"1BAD\"]: name must match"));
  m = SampleAssignTrial();
  m.gpus = {0, 1, 0};
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.gpus[2]: duplicate GPU index 0"));
  m = SampleAssignTrial();
  m.max_runtime_s = 0;
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.max_runtime_s: must be >= 1"));
  m = SampleAssignTrial();
  m.checkpoint_local_path = "relative/dir";
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.checkpoint_local_path: must be an absolute path"));
  m = SampleAssignTrial();
  m.spec_json = "{not json";
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.spec_json: must be JSON text"));
  m = SampleAssignTrial();
  m.host_addresses["algo-9"] = "10.0.0.9";
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.host_addresses[\"algo-9\"]: must name one of hosts"));
  m = SampleAssignTrial();
  m.host_addresses["algo-1"] = "10.0.0.1 evil";
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.host_addresses[\"algo-1\"]: must be 1-255 printable ASCII"));
  m = SampleAssignTrial();
  m.after_trial = m.trial;
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.after_trial: must not be the trial itself"));
  m = SampleAssignTrial();
  m.after_attempt = 0;
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.after_attempt: must be >= 1"));
  m = SampleAssignTrial();
  m.after_trial = "";
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.after_attempt: must be 0 when after_trial is empty"));
  m.after_attempt = 0;
  EXPECT_TRUE(m.Validate().ok());
  m = SampleAssignTrial();
  m.tuning_job = std::string(33, 'a');
  EXPECT_TRUE(RejectedMessage(m, "AssignTrial.tuning_job: must be 1-32 letters"));
  m = SampleAssignTrial();
  m.definition_name = "";
  m.spec_json = "";
  m.checkpoint_uri = "";
  m.checkpoint_local_path = "";
  m.channels.clear();
  m.gpus.clear();
  m.environment.clear();
  EXPECT_TRUE(Validate(m).ok()) << "fields documented as may-be-empty";
}

TEST(WireValidate, RejectsRegisterResourcesThatCannotRunATrial) {
  Register m = SampleRegister();
  m.slots = 0;
  EXPECT_TRUE(RejectedMessage(m, "Register.slots: must be >= 1"));
  m = SampleRegister();
  m.gpus[1].index = 0;
  EXPECT_TRUE(RejectedMessage(m, "Register.gpus[1].index: duplicate GPU index 0"));
  m = SampleRegister();
  m.running.push_back(m.running[0]);
  EXPECT_TRUE(RejectedMessage(m, "Register.running[2]: duplicate of an earlier entry"));
  m = SampleRegister();
  m.host = "";
  EXPECT_TRUE(RejectedMessage(m, "Register.host: must not be empty"));
}

TEST(WireValidate, RejectsRegisterAckWhoseLeaseIsNotLongerThanTheHeartbeatInterval) {
  RegisterAck m = SampleRegisterAck();
  m.lease_ms = m.heartbeat_interval_ms;
  EXPECT_TRUE(
      RejectedMessage(m, "RegisterAck.lease_ms: must be > heartbeat_interval_ms (5000), got 5000"));
  m = RegisterAck{};
  m.accepted = false;
  EXPECT_TRUE(RejectedMessage(m, "RegisterAck.reason: must not be empty"));
  m.reason = "worker_id gpu-node-07 is already connected from another host";
  EXPECT_TRUE(Validate(m).ok()) << "a refusal needs no timings";
}

TEST(WireValidate, RejectsAcksThatDoNotIdentifyWhatTheyAcknowledge) {
  Ack m = SampleAck();
  m.seq = 0;
  EXPECT_TRUE(RejectedMessage(m, "Ack.seq: must be >= 1"));
  m = SampleAck();
  m.trial = "";
  EXPECT_TRUE(RejectedMessage(m, "Ack.trial: must not be empty"));
  m = Ack{static_cast<uint16_t>(MsgType::kHeartbeat), kTrial, 0, 5};
  EXPECT_TRUE(RejectedMessage(m, "Ack.trial: must be empty in an Ack of Heartbeat"));
  m = Ack{static_cast<uint16_t>(MsgType::kRegister), "", 0, 0};
  EXPECT_TRUE(
      RejectedMessage(m, "Ack.type: 1 (Register) is not a message that is acknowledged with Ack"));
  m = Ack{static_cast<uint16_t>(MsgType::kStopTrial), kTrial, 2, 9};
  EXPECT_TRUE(RejectedMessage(m, "Ack.seq: must be 0 in an Ack of StopTrial"));
  EXPECT_TRUE(Validate(Ack{static_cast<uint16_t>(MsgType::kHeartbeat), "", 0, 5}).ok());
  EXPECT_TRUE(Validate(Ack{static_cast<uint16_t>(MsgType::kTrialExited), kTrial, 2, 0}).ok());
}

TEST(WireValidate, RejectsAnErrorWithoutCodeOrMessage) {
  Error m = SampleError();
  m.code = "Bad Code";
  EXPECT_TRUE(RejectedMessage(m, "Error.code: must be 1-64 characters from [A-Za-z0-9]"));
  m = SampleError();
  m.message = "";
  EXPECT_TRUE(RejectedMessage(m, "Error.message: must not be empty"));
}

TEST(WireValidate, DefaultConstructedMessagesAreNotValid) {
  for (Message m :
       {Message(Register{}), Message(Heartbeat{}), Message(AssignTrial{}), Message(TrialStarted{}),
        Message(MetricPoints{}), Message(TrialExited{}), Message(StopTrial{}),
        Message(InterruptionNotice{}), Message(Ack{}), Message(Error{}), Message(RegisterAck{})}) {
    EXPECT_FALSE(Validate(m).ok()) << MsgTypeName(TypeOf(m));
  }
}

// ---- protocol version
// ----------------------------------------------------------------------------

TEST(WireVersion, CheckProtocolVersionAcceptsOnlyThisBuildsVersionAndSaysWhatToDo) {
  EXPECT_TRUE(CheckProtocolVersion(kProtocolVersion).ok());
  const std::string ours = std::to_string(kProtocolVersion), next = std::to_string(kProtocolVersion + 1);
  const Status s = CheckProtocolVersion(kProtocolVersion + 1);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "protocol version mismatch: this build speaks " + ours + ", peer speaks " + next + "; upgrade the older side");
}

TEST(WireVersion, ARegisterOfAnotherVersionIsRefusedBeforeItsFieldsAreRead) {
  // A Register of the next version, whose fields this build would not understand.
  const std::string ours = std::to_string(kProtocolVersion), next = std::to_string(kProtocolVersion + 1);
  const std::string body = Packed([](auto& p) {
    p.pack_map(2);
    p.pack(std::string("protocol_version"));
    p.pack(kProtocolVersion + 1);
    p.pack(std::string("node"));
    p.pack_map(0);
  });
  EXPECT_TRUE(Rejected(Frames(MsgType::kRegister, body),
                       "Register: protocol version mismatch: this build speaks " + ours + ", peer speaks " + next +
                           "; upgrade the older side",
                       error_code::kProtocolVersionMismatch));
  Error reply;
  (void)DecodeFrames(Frames(MsgType::kRegister, body), &reply);
  EXPECT_EQ(reply.in_reply_to, static_cast<uint16_t>(MsgType::kRegister));

  EXPECT_TRUE(Rejected(BodyEditor(SampleRegisterAck()).Set("protocol_version", kProtocolVersion + 1).Frames(),
                       "RegisterAck: protocol version mismatch: this build speaks " + ours + ", peer speaks " + next,
                       error_code::kProtocolVersionMismatch));
  Register r = SampleRegister();
  r.protocol_version = 0;
  EXPECT_TRUE(Rejected(EncodeFrames(r), "peer speaks 0", error_code::kProtocolVersionMismatch));
  EXPECT_EQ(r.Validate().code(), StatusCode::kFailedPrecondition);
}

// ---- the reply a receiver sends
// --------------------------------------------------------------------

TEST(WireReply, EachKindOfFailureGetsItsOwnErrorCode) {
  const std::string body = EncodeFrames(SampleHeartbeat())[1];
  EXPECT_TRUE(Rejected({body}, "2 frames", error_code::kMalformedMessage));
  EXPECT_TRUE(
      Rejected(Frames(40, body), "unknown message type 40", error_code::kUnknownMessageType));
  EXPECT_TRUE(
      Rejected(Frames(MsgType::kHeartbeat, "\x92"), "truncated", error_code::kMalformedMessage));
  EXPECT_TRUE(Rejected(BodyEditor(SampleHeartbeat()).Set("seq", 0).Frames(),
                       "Heartbeat.seq: must be >= 1", error_code::kInvalidField));
}

TEST(WireReply, HostileKeysAreQuotedShortAndEscapedInTheReply) {
  const std::string long_key = std::string(3000, 'k') + "\x01\"";
  const std::string body = Packed([&](auto& p) {
    p.pack_map(2);
    p.pack(long_key);
    p.pack(1);
    p.pack(long_key);
    p.pack(2);
  });
  Error reply;
  ASSERT_FALSE(DecodeFrames(Frames(MsgType::kHeartbeat, body), &reply).ok());
  EXPECT_TRUE(reply.Validate().ok()) << reply.Validate().ToString();
  EXPECT_LT(reply.message.size(), 200u) << reply.message;
  EXPECT_NE(reply.message.find("Heartbeat[\"kkkk"), std::string::npos) << reply.message;
}

// ---- text
// ----------------------------------------------------------------------------------------

TEST(WireText, SanitizeTextRepairsUtf8DropsNulAndCutsAtCharacters) {
  EXPECT_EQ(SanitizeText("plain", 100), "plain");
  EXPECT_EQ(SanitizeText(std::string("a\0b", 3), 100), "ab");
  EXPECT_EQ(SanitizeText("bad\xff"
                         "byte",
                         100),
            "bad\xEF\xBF\xBD"
            "byte");
  EXPECT_EQ(SanitizeText("\xc3\xa9\xc3\xa9\xc3\xa9", 2), "\xc3\xa9\xc3\xa9");
  EXPECT_EQ(SanitizeText("\xe2\x82", 10), "\xEF\xBF\xBD\xEF\xBF\xBD")
      << "a cut sequence is two bad bytes";
  TrialExited m = SampleTrialExited();
  m.failure_reason = SanitizeText(std::string(5000, '\xff'), limits::kMaxFailureReasonChars);
  EXPECT_TRUE(Validate(m).ok());
}

// ---- property: no input crashes the decoder
// --------------------------------------------------------

TEST(WireProperty, TenThousandRandomAndMutatedInputsNeverCrashAndWhatDecodesRoundTrips) {
  std::mt19937_64 rng(20260101);
  const std::vector<Message> samples = AllSamples();
  std::vector<std::vector<std::string>> valid;
  for (const Message& m : samples) valid.push_back(EncodeFrames(m));
  const auto uniform = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  size_t decoded = 0;
  for (int iter = 0; iter < 10000; ++iter) {
    std::vector<std::string> frames;
    switch (iter % 4) {
      case 0: {  // random bytes under a random (mostly known) type
        std::string body(uniform(300), '\0');
        for (char& c : body) c = static_cast<char>(rng());
        frames = Frames(static_cast<uint16_t>(uniform(16)), body);
        break;
      }
      case 1: {  // truncation of a valid encoding
        frames = valid[uniform(valid.size())];
        frames[1].resize(uniform(frames[1].size() + 1));
        break;
      }
      case 2: {  // 1-4 bit flips
        frames = valid[uniform(valid.size())];
        for (size_t k = 1 + uniform(4); k > 0; --k)
          frames[1][uniform(frames[1].size())] ^= static_cast<char>(1 << uniform(8));
        break;
      }
      default: {  // byte replacements, insertions, and a body under another type
        frames = valid[uniform(valid.size())];
        for (size_t k = 1 + uniform(3); k > 0; --k) {
          const size_t at = uniform(frames[1].size());
          if (rng() % 2)
            frames[1][at] = static_cast<char>(rng());
          else
            frames[1].insert(at, 1, static_cast<char>(rng()));
        }
        if (rng() % 8 == 0) frames[0] = TypeFrame(static_cast<uint16_t>(1 + uniform(11)));
        if (rng() % 32 == 0) frames.push_back("extra");
        break;
      }
    }
    Error reply;
    Result<Message> r = DecodeFrames(frames, &reply);
    if (!r.ok()) {
      ASSERT_TRUE(reply.Validate().ok()) << reply.Validate().ToString();
      continue;
    }
    ++decoded;
    ASSERT_TRUE(Validate(*r).ok());
    Result<Message> again = DecodeFrames(EncodeFrames(*r));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    ASSERT_TRUE(*again == *r);
  }
  RecordProperty("decoded", static_cast<int>(decoded));
}

}  // namespace
}  // namespace hpo::proto::wire
