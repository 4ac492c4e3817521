// coordinator/core_queries.cc: CoordinatorCore's read-only queries (Describe, summaries, lookups).
#include "coordinator/core_impl.h"

namespace hpo::coordinator {

using core_detail::Lower;
using proto::StringMap;


std::string CoordinatorCore::JobArn(const std::string& job) const {
  return "arn:aws:sagemaker:" + options_.region + ":" + options_.account_id + ":hyper-parameter-tuning-job/" +
         Lower(job);
}

std::string CoordinatorCore::TrainingJobArn(const std::string& trial) const {
  return "arn:aws:sagemaker:" + options_.region + ":" + options_.account_id + ":training-job/" + Lower(trial);
}

proto::TrainingJobSummary CoordinatorCore::Summary(const Trial& t) const {
  proto::TrainingJobSummary s;
  const TuningJob* j = FindJob(t.tuning_job);
  if (!t.definition_name.empty()) s.training_job_definition_name = t.definition_name;
  s.training_job_name = t.name;
  s.training_job_arn = TrainingJobArn(t.name);
  s.tuning_job_name = t.tuning_job;
  s.creation_time = proto::Timestamp{t.creation_ms};
  if (t.start_ms) s.training_start_time = proto::Timestamp{t.start_ms};
  if (t.end_ms) s.training_end_time = proto::Timestamp{t.end_ms};
  s.training_job_status = TrainingJobStatusOf(t);
  s.tuned_hyper_parameters = t.tuned;
  if (!t.failure_reason.empty()) s.failure_reason = t.failure_reason;
  if (t.ShowsObjective() && j) {
    s.final_hyper_parameter_tuning_job_objective_metric = proto::FinalObjectiveMetric{
        impl_->MaximizeFor(*j, t.definition_name) ? "Maximize" : "Minimize",
        impl_->ObjectiveMetricFor(*j, t.definition_name), *t.objective};
  }
  s.objective_status = impl_->ObjectiveSucceeded(t) ? "Succeeded" : (t.Terminal() ? "Failed" : "Pending");
  return s;
}

Result<proto::DescribeTuningJobResponse> CoordinatorCore::Describe(const std::string& name, int64_t now_ms) const {
  const TuningJob* j = FindJob(name);
  if (!j) return impl_->NoTuningJob(name);  // (`hpo stop` describes first: a spot pass got no hint)
  proto::DescribeTuningJobResponse r;
  r.spec = j->spec;
  r.spec.hyper_parameter_tuning_job_name = j->name;
  auto& st = r.status;
  st.hyper_parameter_tuning_job_arn = JobArn(j->name);
  st.hyper_parameter_tuning_job_status = j->ShownStatus();
  st.creation_time = proto::Timestamp{j->creation_ms};
  if (j->end_ms) st.hyper_parameter_tuning_end_time = proto::Timestamp{j->end_ms};
  st.last_modified_time = proto::Timestamp{j->last_modified_ms};
  proto::TrainingJobStatusCounters c{0, 0, 0, 0, 0};
  proto::ObjectiveStatusCounters o{0, 0, 0};
  for (const auto& tn : j->trials) {
    const Trial& t = impl_->trials.at(tn);
    if (t.Unlaunched()) continue;  // not a training job yet
    switch (t.state) {
      case TrialState::kPending:
      case TrialState::kInProgress:
      case TrialState::kStopping: ++*c.in_progress; break;
      case TrialState::kCompleted: ++*c.completed; break;
      case TrialState::kStopped: ++*c.stopped; break;
      case TrialState::kFailed:
        if (impl_->retryable_failures.count(t.name) || t.failure_reason.rfind("InternalServerError", 0) == 0) {
          ++*c.retryable_error;
        } else {
          ++*c.non_retryable_error;
        }
        break;
    }
    if (impl_->ObjectiveSucceeded(t)) {
      ++*o.succeeded;
    } else if (t.Terminal()) {
      ++*o.failed;
    } else {
      ++*o.pending;
    }
  }
  st.training_job_status_counters = c;
  st.objective_status_counters = o;
  const Trial* best = impl_->Best(*j);
  if (best) st.best_training_job = Summary(*best);
  if (j->spec.warm_start_config &&
      j->spec.warm_start_config->warm_start_type.value_or("") == "IdenticalDataAndAlgorithm") {
    // The best across this job and its parents (SageMaker's OverallBestTrainingJob, which it
    // gives for IdenticalDataAndAlgorithm only: TransferLearning parents' objectives were
    // measured on other data or by another algorithm).
    // Of a parent with several definitions, only the training jobs of those that fit this job
    // compete (Impl::WarmFitting); ties keep the earlier one.
    const Trial* overall = best;
    const bool maximize = impl_->WarmObjective(*j).second;
    for (const auto& p : j->spec.warm_start_config->parent_hyper_parameter_tuning_jobs) {
      const TuningJob* parent = FindJob(p.hyper_parameter_tuning_job_name.value_or(""));
      if (!parent) continue;
      const std::set<std::string> fitting = impl_->WarmFitting(*j, *parent);
      for (const auto& tn : parent->trials) {
        const Trial& u = impl_->trials.at(tn);
        if (!impl_->ObjectiveSucceeded(u) || !fitting.count(u.definition_name)) continue;
        if (!overall || Impl::Better(*u.objective, *overall->objective, maximize)) overall = &u;
      }
    }
    if (overall) st.overall_best_training_job = Summary(*overall);
  }
  if (const Impl::JobIndex* ix = static_cast<const Impl&>(*impl_).Index(*j)) {
    proto::TuningJobCompletionDetails details;
    details.number_of_training_jobs_objective_not_improving =
        j->not_improving_final >= 0 ? j->not_improving_final : ix->not_improving.not_improving;
    if (j->convergence_ms) details.convergence_detected_time = proto::Timestamp{j->convergence_ms};
    st.tuning_job_completion_details = details;
  }
  if (!j->failure_reason.empty()) st.failure_reason = j->failure_reason;
  if (!j->delete_failure.empty()) st.failure_reason = j->delete_failure;  // DeleteFailed: why
  // SageMaker: "the wall clock runtime in seconds used by your hyperparameter tuning job".
  const int64_t until = j->end_ms ? j->end_ms : std::max(now_ms, j->last_modified_ms);
  st.consumed_resources = proto::ConsumedResources{std::max<int64_t>(0, until - j->creation_ms) / 1000};
  return r;
}

Result<proto::TuningJobDocument> CoordinatorCore::DescribeDocument(const std::string& name) const {
  auto d = Describe(name);
  if (!d.ok()) return d.status();
  proto::TuningJobDocument doc;
  // The resource's own metadata when it came as one; else the job's name, as Kubernetes writes
  // names (lower-case).
  doc.metadata = nlohmann::ordered_json{{"name", Lower(name)}};
  if (const TuningJob* job = FindJob(name)) {
    for (const auto& [key, value] : job->kubernetes_metadata.items()) doc.metadata[key] = value;
  }
  doc.spec = d->spec;
  doc.status = d->status;
  auto& st = *doc.status;
  st.ack_resource_metadata = proto::AckResourceMetadata{st.hyper_parameter_tuning_job_arn, options_.account_id,
                                                        options_.region};
  st.hyper_parameter_tuning_job_arn.reset();
  std::string status = st.hyper_parameter_tuning_job_status.value_or("");
  bool synced = status != "InProgress" && status != "Stopping";
  st.conditions.push_back(proto::Condition{"ACK.ResourceSynced", synced ? "True" : "False",
                                           st.last_modified_time, std::nullopt,
                                           "HyperParameterTuningJob is in " + status + " status."});
  const TuningJob* j = FindJob(name);
  if (j && !j->waiting_reason.empty() && status == "InProgress") {
    st.conditions.push_back(proto::Condition{"Waiting", "True", proto::Timestamp{j->waiting_since_ms},
                                             std::string("NoWorkerFits"), j->waiting_reason});
  }
  return doc;
}

std::vector<const TuningJob*> CoordinatorCore::Jobs() const {
  std::vector<const TuningJob*> out;
  for (const auto& [k, j] : impl_->jobs) out.push_back(j.get());
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->creation_ms < b->creation_ms; });
  return out;
}

const TuningJob* CoordinatorCore::FindJob(const std::string& job) const {
  auto it = impl_->jobs.find(Lower(job));
  return it == impl_->jobs.end() ? nullptr : it->second.get();
}

const Trial* CoordinatorCore::FindTrial(const std::string& trial) const { return impl_->TrialNamed(trial); }

Trial* CoordinatorCore::Impl::TrialNamed(const std::string& name) {
  if (auto it = trials.find(name); it != trials.end()) return &it->second;
  // Names differ only in case through their tuning job's name (the suffix is lower-case hex).
  TuningJob* j = Job(TuningJobOfTrialName(name));
  if (!j) return nullptr;
  for (const auto& t : j->trials) {
    if (EqualsIgnoringCase(t, name)) return &trials.at(t);
  }
  return nullptr;
}

std::vector<const Trial*> CoordinatorCore::TrialsOf(const std::string& job) const {
  std::vector<const Trial*> out;
  const TuningJob* j = FindJob(job);
  if (!j) return out;
  for (const auto& t : j->trials) out.push_back(&impl_->trials.at(t));
  return out;
}

Result<std::vector<LogRow>> CoordinatorCore::Logs(const std::string& trial, int64_t after_id, size_t limit) const {
  const Trial* t = FindTrial(trial);
  if (!t) return Status::NotFound("no training job named " + trial);
  return impl_->store->LoadLogs(t->name, after_id, limit);
}

std::vector<std::string> CoordinatorCore::TrialNames(const std::string& prefix, const std::string& after,
                                                     size_t limit) const {
  // The names with the prefix are one run of the sorted map, from lower_bound(prefix).
  const auto& trials = impl_->trials;
  auto it = after < prefix ? trials.lower_bound(prefix) : trials.upper_bound(after);
  std::vector<std::string> out;
  for (; it != trials.end() && out.size() < limit && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.push_back(it->first);
  }
  return out;
}

Result<std::vector<MetricRow>> CoordinatorCore::MetricHistory(const std::string& trial) const {
  const Trial* t = FindTrial(trial);
  if (!t) return Status::NotFound("no training job named " + trial);
  return impl_->store->LoadMetrics(t->name);
}

Result<std::vector<LogStreamRow>> CoordinatorCore::LogStreams(const std::string& trial) const {
  const Trial* t = FindTrial(trial);
  if (!t) return Status::NotFound("no training job named " + trial);
  return impl_->store->LoadLogStreams(t->name);
}

Result<std::vector<LogRow>> CoordinatorCore::StreamLines(const std::string& trial, uint32_t attempt, uint32_t host,
                                                         uint64_t from, uint64_t to, int64_t start_ms,
                                                         int64_t end_ms, size_t limit, bool from_end) const {
  const Trial* t = FindTrial(trial);
  if (!t) return Status::NotFound("no training job named " + trial);
  return impl_->store->LoadStreamLines(t->name, attempt, host, from, to, start_ms, end_ms, limit, from_end);
}

Result<std::vector<LogRow>> CoordinatorCore::LinesByTime(const std::vector<std::string>& trials, int64_t start_ms,
                                                         int64_t end_ms, int64_t after_ms, int64_t after_id,
                                                         size_t limit) const {
  return impl_->store->LoadLinesByTime(trials, start_ms, end_ms, after_ms, after_id, limit);
}

Result<std::map<std::string, std::vector<double>>> CoordinatorCore::Curves(
    const std::string& job, const std::set<std::string>* only,
    std::map<std::string, std::vector<size_t>>* attempt_starts) const {
  const TuningJob* j = FindJob(job);
  if (!j) return Status::NotFound("no tuning job named " + job);
  const bool tracked = impl_->TracksCurves(*j);
  std::map<std::string, std::vector<double>> out;
  for (const Trial* t : TrialsOf(job)) {
    if (only && !only->count(t->name)) continue;
    std::vector<double>& curve = out[t->name];
    const std::string metric = impl_->ObjectiveMetricFor(*j, t->definition_name);
    // The earlier attempts' values (the store keeps each attempt's), when asked for.
    for (uint32_t a = 1; attempt_starts && a < t->attempt; ++a) {
      auto values = impl_->store->LoadMetricValues(t->name, a, metric);
      if (!values.ok()) return values.status();
      if (a > 1 && !values->empty() && !curve.empty()) (*attempt_starts)[t->name].push_back(curve.size());
      curve.insert(curve.end(), values->begin(), values->end());
    }
    const size_t current_from = curve.size();
    if (tracked || t->attempt == 0) {
      curve.insert(curve.end(), t->curve.begin(), t->curve.end());
    } else {
      auto values = impl_->store->LoadMetricValues(t->name, t->attempt, metric);
      if (!values.ok()) return values.status();
      curve.insert(curve.end(), values->begin(), values->end());
    }
    if (attempt_starts && t->attempt > 1 && current_from > 0 && curve.size() > current_from) {
      (*attempt_starts)[t->name].push_back(current_from);
    }
  }
  return out;
}

Result<std::vector<EventRow>> CoordinatorCore::Events(const std::string& job, int64_t after_id, size_t limit) const {
  Result<std::vector<EventRow>> rows = impl_->store->LoadEvents(job, after_id, limit);
  if (!rows.ok() || job.empty() || !rows->empty() || FindJob(job)) return rows;
  // Nothing after the cursor: a job that has (or had) events exists; a typo does not.
  Result<std::vector<EventRow>> any = impl_->store->LoadEvents(job, 0, 1);
  if (any.ok() && any->empty()) return Status::NotFound("no tuning job named " + job + " (and no events of one)");
  return rows;
}

Result<std::vector<EventRow>> CoordinatorCore::LastEvents(const std::string& job, size_t limit) const {
  Result<std::vector<EventRow>> rows = impl_->store->LoadLastEvents(job, limit);
  if (!rows.ok() || job.empty() || !rows->empty() || FindJob(job)) return rows;
  return Status::NotFound("no tuning job named " + job + " (and no events of one)");
}

std::map<std::string, uint64_t> CoordinatorCore::EventCounts() const { return impl_->event_counts; }

const SuggestionStats* CoordinatorCore::Suggestions(const std::string& job) const {
  auto it = impl_->suggestions.find(Lower(job));
  return it == impl_->suggestions.end() ? nullptr : &it->second;
}

std::set<uint32_t> CoordinatorCore::GpusInUse(const std::string& worker) const {
  auto it = impl_->worker_gpus_used.find(worker);
  return it == impl_->worker_gpus_used.end() ? std::set<uint32_t>{} : it->second;
}

std::vector<const WorkerInfo*> CoordinatorCore::Workers() const {
  std::vector<const WorkerInfo*> out;
  for (const auto& [k, w] : impl_->workers) out.push_back(&w);
  return out;
}

const std::map<std::string, DepartedWorker>& CoordinatorCore::Departed() const { return impl_->departed; }

}  // namespace hpo::coordinator
