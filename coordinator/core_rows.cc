#include "coordinator/core_rows.h"

#include <cstdint>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "proto/tuning_job.h"

namespace hpo::coordinator {
namespace {

using Json = nlohmann::ordered_json;
using proto::StringMap;

// The value at `key` of an object, or `fallback` when it is absent or of another type (a damaged
// row keeps the default instead of throwing).
template <typename T>
T Get(const Json& object, const char* key, T fallback) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception&) {
    return fallback;
  }
}

}  // namespace

JobRow JobToRow(const TuningJob& j) {
  JobRow r;
  r.name = j.name;
  r.spec_json = proto::EncodeCreateRequest(j.spec).dump(-1, ' ', false, Json::error_handler_t::replace);
  r.spelling = "crd";
  Json meta = Json::object();
  if (j.convergence_ms) meta["convergence_ms"] = j.convergence_ms;
  if (j.not_improving_final >= 0) meta["not_improving_final"] = j.not_improving_final;
  if (j.deleting) meta["deleting"] = true;
  if (!j.kubernetes_metadata.empty()) meta["kubernetes"] = j.kubernetes_metadata;
  r.metadata_json = meta.dump(-1, ' ', false, Json::error_handler_t::replace);
  r.status = j.status;
  r.failure_reason = j.failure_reason;
  r.completion_reason = j.completion_reason;
  r.seed = j.seed;
  r.creation_ms = j.creation_ms;
  r.end_ms = j.end_ms;
  r.last_modified_ms = j.last_modified_ms;
  return r;
}

Status JobFromRow(const JobRow& r, TuningJob* job) {
  auto tree = proto::ParseText(r.spec_json);
  if (!tree.ok()) return Status::InvalidArgument("tuning job " + r.name + ": stored spec: " + tree.status().message());
  auto spec = proto::DecodeCreateRequest(*tree);
  if (!spec.ok()) return Status::InvalidArgument("tuning job " + r.name + ": stored spec: " + spec.status().message());
  // What every accepted spec has and the core relies on: a row without it is damaged ({} parsed,
  // and a job without a strategy was served, and crashed what read it).
  const auto& c = spec->hyper_parameter_tuning_job_config;
  if (!c || !c->strategy || !c->resource_limits ||
      (!spec->training_job_definition && spec->training_job_definitions.empty())) {
    return Status::InvalidArgument("tuning job " + r.name +
                                   ": stored spec: it lacks HyperParameterTuningJobConfig.Strategy, its ResourceLimits, "
                                   "or a training job definition");
  }
  job->name = r.name;
  job->spec = *spec;
  job->status = r.status;
  job->failure_reason = r.failure_reason;
  job->completion_reason = r.completion_reason;
  job->seed = r.seed;
  job->creation_ms = r.creation_ms;
  job->end_ms = r.end_ms;
  job->last_modified_ms = r.last_modified_ms;
  Json meta = Json::parse(r.metadata_json, nullptr, false);
  if (meta.is_object()) {
    job->convergence_ms = Get(meta, "convergence_ms", int64_t{0});
    job->not_improving_final = Get(meta, "not_improving_final", int64_t{-1});
    job->deleting = Get(meta, "deleting", false);
    if (auto k = meta.find("kubernetes"); k != meta.end()) job->kubernetes_metadata = proto::KeptKubernetesMetadata(*k);
  }
  return Status::Ok();
}

std::optional<TrialState> ParseTrialState(const std::string& s) {
  for (TrialState t : {TrialState::kPending, TrialState::kInProgress, TrialState::kCompleted, TrialState::kFailed,
                       TrialState::kStopping, TrialState::kStopped}) {
    if (s == TrialStateName(t)) return t;
  }
  return std::nullopt;
}

TrialRow TrialToRow(const Trial& t) {
  TrialRow r;
  r.name = t.name;
  r.tuning_job = t.tuning_job;
  r.index = t.index;
  r.definition_name = t.definition_name;
  r.state = TrialStateName(t.state);
  r.attempt = t.attempt;
  r.worker_id = t.worker_id;
  r.creation_ms = t.creation_ms;
  r.start_ms = t.start_ms;
  r.end_ms = t.end_ms;
  r.failure_reason = t.failure_reason;
  Json d;
  d["tuned"] = t.tuned;
  d["hyperparameters"] = t.hyperparameters;
  Json sec = Json::array();
  for (const auto& s : t.secondary) sec.push_back({{"status", s.status}, {"start_ms", s.start_ms}, {"message", s.message}});
  d["secondary"] = sec;
  d["final_metrics"] = t.final_metrics;
  d["final_metric_ms"] = t.final_metric_ms;
  if (t.objective) d["objective"] = *t.objective;
  d["last_seq"] = t.last_seq;
  d["started"] = t.started;
  d["infra_failures"] = t.infra_failures;
  if (t.moving) d["moving"] = true;
  if (t.assigned_ahead) d["assigned_ahead"] = true;
  if (t.withdrawing) d["withdrawing"] = true;
  if (t.setup_requeues > 0) {
    d["setup_requeues"] = t.setup_requeues;
    d["setup_refused_by"] = t.setup_refused_by;
  }
  d["stop_requested"] = t.stop_requested;
  d["stop_reason"] = t.stop_reason;
  if (!t.gpus.empty()) d["gpus"] = t.gpus;
  if (t.resource_option > 0) d["resource_option"] = t.resource_option;
  if (t.interruptions > 0) d["interruptions"] = t.interruptions;
  if (t.requeued_ms > 0) d["requeued_ms"] = t.requeued_ms;
  if (t.fenced_until_ms > 0 && t.state == TrialState::kPending) d["fenced_until_ms"] = t.fenced_until_ms;
  if (!t.interrupted_on.empty()) d["interrupted_on"] = t.interrupted_on;
  if (!t.evicted.empty()) d["evicted"] = t.evicted;
  if (t.Queued()) d["after"] = {{"trial", t.after_trial}, {"attempt", t.after_attempt}};
  if (!t.gang.empty()) {
    Json g = Json::array();
    for (const auto& h : t.gang) {
      g.push_back({{"worker", h.worker_id}, {"group", h.group}, {"type", h.instance_type}, {"gpus", h.gpus},
                   {"exit", h.exit}, {"seq", h.seq}, {"ended_ms", h.ended_ms}, {"started_ms", h.worker_started_ms}});
    }
    d["gang"] = g;
    if (!t.metric_host.empty()) d["metric_host"] = t.metric_host;
  }
  if (!t.gang_workers.empty()) {
    Json gw = Json::object();
    for (const auto& [attempt, ws] : t.gang_workers) gw[std::to_string(attempt)] = ws;
    d["gang_workers"] = gw;
  }
  if (t.discard_hand_over) {
    d["discard_hand_over"] = {{"attempt", t.discard_hand_over->attempt},
                              {"output_path", t.discard_hand_over->output_path},
                              {"workers", t.discard_hand_over->workers}};
  }
  if (t.training_ms > 0) d["training_ms"] = t.training_ms;
  if (t.spot_training_ms > 0) d["spot_training_ms"] = t.spot_training_ms;
  if (t.attempt_start_ms > 0) {
    d["attempt_start_ms"] = t.attempt_start_ms;
    d["on_spot"] = t.on_spot;
  }
  if (t.worker_started_ms > 0) {
    d["worker_started_ms"] = t.worker_started_ms;
    d["worker_started_on"] = t.worker_started_on;
  }
  if (t.counted > 0) d["counted"] = t.counted;
  if (t.tags) {
    Json tags = Json::array();
    for (const auto& tag : *t.tags) tags.push_back({{"Key", tag.key.value_or("")}, {"Value", tag.value.value_or("")}});
    d["tags"] = tags;
  }
  r.detail_json = d.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

Trial TrialFromRow(const TrialRow& r, std::string* damage) {
  Trial t;
  t.name = r.name;
  t.tuning_job = r.tuning_job;
  t.index = r.index;
  t.definition_name = r.definition_name;
  const auto state = ParseTrialState(r.state);
  t.state = state.value_or(TrialState::kFailed);
  t.attempt = r.attempt;
  t.worker_id = r.worker_id;
  t.creation_ms = r.creation_ms;
  t.start_ms = r.start_ms;
  t.end_ms = r.end_ms;
  t.failure_reason = r.failure_reason;
  Json d = Json::parse(r.detail_json, nullptr, false);
  if (damage) {
    damage->clear();
    if (!state) *damage = "its state \"" + r.state.substr(0, 40) + "\" is none of hpo's";
    if (!d.is_object()) {
      *damage += std::string(damage->empty() ? "" : "; ") +
                 "its detail (hyperparameters, metrics, attempts) is not a JSON object";
    }
  }
  if (!d.is_object()) return t;
  const std::string none;
  t.tuned = Get(d, "tuned", StringMap{});
  t.hyperparameters = Get(d, "hyperparameters", StringMap{});
  for (const auto& s : Get(d, "secondary", Json::array())) {
    if (!s.is_object()) continue;
    t.secondary.push_back({Get(s, "status", none), Get(s, "start_ms", int64_t{0}), Get(s, "message", none)});
  }
  t.final_metrics = Get(d, "final_metrics", std::map<std::string, double>{});
  t.final_metric_ms = Get(d, "final_metric_ms", std::map<std::string, int64_t>{});
  if (auto o = d.find("objective"); o != d.end() && o->is_number()) t.objective = o->get<double>();
  t.last_seq = Get(d, "last_seq", uint64_t{0});
  t.started = Get(d, "started", false);
  t.infra_failures = Get(d, "infra_failures", 0);
  t.setup_requeues = Get(d, "setup_requeues", 0);
  t.moving = Get(d, "moving", false);
  t.assigned_ahead = Get(d, "assigned_ahead", false);
  t.withdrawing = Get(d, "withdrawing", false);
  t.setup_refused_by = Get(d, "setup_refused_by", std::set<std::string>{});
  t.stop_requested = Get(d, "stop_requested", false);
  t.stop_reason = Get(d, "stop_reason", none);
  t.gpus = Get(d, "gpus", std::vector<uint32_t>{});
  t.resource_option = Get(d, "resource_option", size_t{0});
  t.interruptions = Get(d, "interruptions", 0);
  t.requeued_ms = Get(d, "requeued_ms", int64_t{0});
  t.fenced_until_ms = Get(d, "fenced_until_ms", int64_t{0});
  t.interrupted_on = Get(d, "interrupted_on", none);
  t.evicted = Get(d, "evicted", none);
  t.training_ms = Get(d, "training_ms", int64_t{0});
  t.spot_training_ms = Get(d, "spot_training_ms", int64_t{0});
  t.attempt_start_ms = Get(d, "attempt_start_ms", int64_t{0});
  t.worker_started_ms = Get(d, "worker_started_ms", int64_t{0});
  t.worker_started_on = Get(d, "worker_started_on", none);
  t.counted = Get(d, "counted", int64_t{0});
  t.on_spot = Get(d, "on_spot", false);
  if (auto tags = d.find("tags"); tags != d.end() && tags->is_array()) {
    t.tags.emplace();
    for (const auto& tag : *tags) {
      if (tag.is_object()) t.tags->push_back(proto::Tag{Get(tag, "Key", none), Get(tag, "Value", none)});
    }
  }
  for (const auto& h : Get(d, "gang", Json::array())) {
    if (!h.is_object()) continue;
    t.gang.push_back({Get(h, "worker", none), Get(h, "group", none), Get(h, "type", none),
                      Get(h, "gpus", std::vector<uint32_t>{}), Get(h, "exit", none), Get(h, "seq", uint64_t{0}),
                      Get(h, "ended_ms", int64_t{0}), Get(h, "started_ms", int64_t{0})});
  }
  t.metric_host = Get(d, "metric_host", std::map<std::string, size_t>{});
  if (auto h = d.find("discard_hand_over"); h != d.end() && h->is_object()) {
    Trial::HandOverToDiscard hd{Get(*h, "attempt", uint32_t{0}), Get(*h, "output_path", none),
                                Get(*h, "workers", std::vector<std::string>{})};
    if (hd.attempt > 0 && !hd.output_path.empty() && !hd.workers.empty()) t.discard_hand_over = std::move(hd);
  }
  if (auto gw = d.find("gang_workers"); gw != d.end() && gw->is_object()) {
    for (const auto& [attempt, ws] : gw->items()) {
      char* end = nullptr;
      const unsigned long a = std::strtoul(attempt.c_str(), &end, 10);
      if (end && *end == '\0' && a > 0 && a <= UINT32_MAX && ws.is_array()) {
        t.gang_workers[static_cast<uint32_t>(a)] = Get(*gw, attempt.c_str(), std::vector<std::string>{});
      }
    }
  }
  if (auto a = d.find("after"); a != d.end() && a->is_object() && !t.Terminal()) {
    t.after_trial = Get(*a, "trial", none);
    t.after_attempt = Get(*a, "attempt", 0u);
    t.assigned_ahead = true;  // a row written before assigned_ahead was stored
  }
  return t;
}

}  // namespace hpo::coordinator
