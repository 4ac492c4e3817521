// coordinator/core_placement.cc: CoordinatorCore::Impl, creating trials and placing them on workers (gangs, assign ahead, scheduling) (coordinator/core_impl.h).
#include "coordinator/core_impl.h"

#include <functional>
#include "proto/builtin_algorithms.h"

namespace hpo::coordinator {

using core_detail::Lower;
using core_detail::Truncate;
using proto::StringMap;

bool CoordinatorCore::Impl::PlaceTraining(const TuningJob& j, const std::string& def_name, const std::string& avoid,
                                          bool prefer_on_demand, Placement* p, Unplaced* u) {
  const size_t n = ResourceOptionCount(j, def_name);
  *u = Unplaced{};
  std::string never;  // why each option can never be served, when none can
  std::string able;   // the instance types of the options that could be served, for people
  for (size_t o = 0; o < n; ++o) {
    p->option = o;
    p->plans = HostsFor(j, def_name, o);
    bool e = false;
    std::string w;
    size_t blocking = 0;
    p->picks = PlaceGang(p->plans, &e, &w, avoid, prefer_on_demand, Lower(j.name), def_name, &blocking);
    if (!p->picks.empty()) return true;
    if (o == 0 || (e && !u->ever)) {  // the first option's reason, or the first that could ever run
      u->req = p->plans[e ? 0 : std::min(blocking, p->plans.size() - 1)].req;
      u->all.clear();
      for (const auto& h : p->plans) u->all.push_back(h.req);
      u->what = e ? GangTypes(p->plans) : u->req.instance_type;
      u->hosts = p->plans.size();
      u->why = w;
    }
    if (!e) never += (never.empty() ? "" : "; ") + (n > 1 ? GangTypes(p->plans) + ": " : "") + w;
    if (e) able += (able.empty() ? "" : " or ") + GangTypes(p->plans);
    u->ever = u->ever || e;
  }
  if (u->ever && able.find(" or ") != std::string::npos) u->what = able;
  if (!u->ever) u->why = never;  // req, hosts, what: the first option's
  return false;
}

std::string CoordinatorCore::NeverServable(const proto::TuningJobSpec& spec) {
  TuningJob probe;  // placement reads only the spec (and the name, for slots held: none here)
  probe.spec = spec;
  const auto defs = spec.Definitions();
  for (const auto* d : defs) {
    const std::string def = d->definition_name.value_or("");
    Impl::Placement p;
    Impl::Unplaced u;
    if (impl_->PlaceTraining(probe, def, "", false, &p, &u) || u.ever) continue;
    return impl_->NeverReason(u, defs.size() > 1 ? def : "");
  }
  return "";
}

std::string CoordinatorCore::Impl::GangTypes(const std::vector<HostPlan>& plans) {
  std::vector<std::pair<std::string, size_t>> types;  // in the order of the hosts
  for (const auto& h : plans) {
    auto it = std::find_if(types.begin(), types.end(), [&](const auto& t) { return t.first == h.req.instance_type; });
    if (it == types.end()) {
      types.push_back({h.req.instance_type, 1});
    } else {
      ++it->second;
    }
  }
  if (types.size() == 1) return types[0].first;
  std::string s;
  for (const auto& [type, count] : types) {
    s += (s.empty() ? "" : " + ") + (type.empty() ? std::string("any worker") : type) +
         (count > 1 ? " x" + std::to_string(count) : "");
  }
  return s;
}

bool CoordinatorCore::Impl::PlaceNext(TuningJob& j, int64_t now, std::vector<Outgoing>* out) {
  Trial* t = OldestPending(j, now);
  // A trial of a definition that no registered worker can run (an instance type none serves)
  // holds no slot of the others: with several definitions, the job's other pending trials, then
  // new ones, go meanwhile (one definition's ml.m5.xlarge held a whole job while its ml.m5.large
  // workers stood idle; a multi-definition pass, then, with two such trials holding both of
  // MaxParallelTrainingJobs, a regression pass). Such trials wait beside the others (counted
  // InProgress, as SageMaker counts a training job waiting for capacity), and start in the job's
  // slots once a worker can run them. Its waiting reason stays said.
  bool others_wait = false;
  int64_t never = 0;               // pending trials none of the registered workers can run
  std::optional<Placement> found;  // t's, when the scan placed it
  if (t && j.spec.Definitions().size() > 1) {
    // One pass over the pending trials, each definition none can run found once (a job of 500
    // such trials placed each of them at every scheduling pass).
    std::set<std::string> never_defs;
    Trial* const first = t;
    t = nullptr;
    for (const auto index : Index(j).pending) {
      Trial* c = &trials.at(Index(j).history.at(static_cast<size_t>(index - 1)).trial);
      if (!MayStartNow(*c, now)) continue;
      if (c != first && never_defs.count(c->definition_name)) {
        ++never;
        continue;
      }
      Placement p;
      Unplaced u;
      if (PlaceTraining(j, c->definition_name, c->interrupted_on, c->interruptions > 0, &p, &u)) {
        t = c;
        found = std::move(p);
        break;
      }
      if (!u.ever) {
        ++never;
        // (One that avoids the worker it was interrupted on speaks for itself only.)
        if (c->interrupted_on.empty()) never_defs.insert(c->definition_name);
      }
      if (c != first) continue;  // (one behind the first may be of another definition)
      NoteWaiting(j, c, u, now);
      if (u.ever) return false;  // it runs once a slot frees: it goes first
      others_wait = true;
    }
  }
  // The job's pending trials that hold one of its slots.
  const int64_t holding = static_cast<int64_t>(Index(j).pending.size()) - never;
  if (!t) {
    if (const Trial* held = others_wait ? nullptr : OldestPending(j)) {  // what waits, said until something else is
      if (auto hosts = lingering.find({held->name, held->attempt}); hosts != lingering.end()) {
        std::string names;
        for (const auto& [wid, gpus] : hosts->second) names += (names.empty() ? "" : ", ") + wid;
        j.waiting_reason = held->name + " runs again once the other hosts of attempt " +
                           std::to_string(held->attempt) + " have stopped and uploaded their checkpoints (on " + names +
                           ")";
      } else if (held->fenced_until_ms > now) {
        j.waiting_reason = held->name + " runs again in " + std::to_string((held->fenced_until_ms - now + 999) / 1000) +
                           " s, once its lost worker's guard has ended the program it may still run there";
      } else {
        j.waiting_reason = held->name + " runs again once the hosts of attempt " + std::to_string(held->attempt) +
                           " that may still be stopping have registered again after the coordinator's restart (a "
                           "lease at most)";
      }
    }
    // Its first kFailuresBeforeGivingUp training jobs to end failed and none succeeded: it gives up
    // unless one still running, which has emitted the objective, succeeds (MaybeFinish). It
    // starts no new one meanwhile: one was placed the moment the fifth failed, and stopped 20 ms
    // later when the job gave up (7 training jobs for "after 5 attempts").
    if (Index(j).succeeded == 0 && Index(j).failed >= core_detail::kFailuresBeforeGivingUp) {
      MaybeFinish(j, now, out);  // gives up now when nothing it waits on runs (failures at launch)
      return false;
    }
    // Only ask the strategy when one of the job's definitions can start somewhere now: a
    // proposal made while nothing can run it would be stale when it does.
    bool any_now = false, any_ever = false;
    // Why the first definition none can ever run cannot; what the first that could waits for.
    Unplaced never, waits;
    for (const auto* d : j.spec.Definitions()) {
      Placement p;
      Unplaced u;
      if (PlaceTraining(j, d->definition_name.value_or(""), "", false, &p, &u)) any_now = true;
      if (!u.ever && never.why.empty()) never = u;
      if (u.ever && !any_ever) waits = u;
      any_ever = any_ever || u.ever;
    }
    if (!any_now) {
      if (j.spec.Definitions().empty()) return false;
      if (!others_wait) NoteWaiting(j, nullptr, any_ever ? waits : never, now);  // (else its reason stands)
      return false;
    }
    if (j.Proposing()) return false;  // its proposal is being made: nothing to place until it is back
    // A retry that waits (fenced, or for its gang's other hosts) is one of the job's
    // MaxParallelTrainingJobs: no new training job takes its place (one did, and ran beside it).
    if (ActiveCount(j) + holding >= MaxParallel(j)) return false;
    if (OffCore(j) && static_cast<int64_t>(j.trials.size()) < MaxJobs(j)) {
      // No trial of the job waits for a slot here (OldestPending is null).
      const int64_t room = std::min<int64_t>(MaxParallel(j) - ActiveCount(j) - holding,
                                             MaxJobs(j) - static_cast<int64_t>(j.trials.size()));
      RequestProposal(j, StartableNow(j, static_cast<size_t>(std::max<int64_t>(room, 1))));
      return false;
    }
    t = CreateTrial(j, now);
    if (!t) {
      MaybeFinish(j, now, out);  // nothing to propose (the strategy is exhausted): settle the job
      return false;
    }
  }
  Placement p;
  Unplaced u;
  if (found) {
    p = std::move(*found);
  } else if (!PlaceTraining(j, t->definition_name, t->interrupted_on, t->interruptions > 0, &p, &u)) {
    if (!others_wait) NoteWaiting(j, t, u, now);
    // A new one of a definition none serves: the next goes now, not a pass later (each waits
    // in one of MaxParallelTrainingJobs, so this ends).
    if (!u.ever && j.spec.Definitions().size() > 1) {
      return PlaceNext(j, now, out);
    }
    return false;
  }

  if (!others_wait) {
    j.waiting_reason.clear();
    j.waiting_said.clear();
    j.waiting_since_ms = 0;
  }
  t->resource_option = p.option;
  Launch(j, *t, *p.picks[0].worker, p.picks[0].gpus, now, out, nullptr, &p.picks);
  return true;
}

size_t CoordinatorCore::Impl::StartableNow(const TuningJob& j, size_t limit) const {
  const auto defs = j.spec.Definitions();
  if (defs.size() != 1) return 1;
  const std::string def = defs[0]->definition_name.value_or("");
  std::vector<HostRequest> options;  // each resource option's one host, in order of preference
  for (size_t o = 0; o < ResourceOptionCount(j, def); ++o) {
    const std::vector<HostPlan> plans = HostsFor(j, def, o);
    if (plans.size() != 1) return 1;
    options.push_back(plans[0].req);
  }
  const std::string job = Lower(j.name);
  size_t n = 0;
  for (const auto& [id, w] : workers) {
    if (n >= limit) break;
    if (!w.Closed().empty()) continue;
    int free = w.free_slots(job, def);
    const auto g = worker_gpus_used.find(id);
    std::set<uint32_t> used = g == worker_gpus_used.end() ? std::set<uint32_t>() : g->second;
    while (n < limit && free > 0) {
      uint32_t gpus = 0;
      bool fits = false;
      for (const HostRequest& req : options) {
        const FitResult f = Fit(opt.catalog, req, w.reg, free, used);
        if (f.now) {
          fits = true;
          gpus = f.gpus;
          break;
        }
      }
      if (!fits) break;
      for (uint32_t i : PickGpus(w.reg, used, gpus)) used.insert(i);
      --free;
      ++n;
    }
  }
  return std::max<size_t>(n, 1);
}

size_t CoordinatorCore::Impl::ResourceOptionCount(const TuningJob& j, const std::string& def_name) const {
  const auto* d = Definition(j, def_name);
  return d ? std::max<size_t>(1, proto::ResourceOptions(*d).size()) : 1;
}

std::vector<CoordinatorCore::Impl::HostPlan> CoordinatorCore::Impl::HostsFor(const TuningJob& j, const std::string& def_name,
                                                                             size_t option) const {
  std::vector<HostPlan> v;
  const auto* d = Definition(j, def_name);
  const std::optional<proto::ResourceConfig> chosen = d ? proto::ResourceOption(*d, option) : std::nullopt;
  const proto::ResourceConfig* rc = chosen ? &*chosen : nullptr;
  const int64_t volume = rc ? rc->volume_size_in_gb.value_or(0) : 0;
  if (rc && !rc->instance_groups.empty()) {
    for (const auto& g : rc->instance_groups) {
      const std::string name = g.instance_group_name.value_or(""), type = g.instance_type.value_or("");
      for (int64_t k = 0; k < g.instance_count.value_or(1); ++k) v.push_back({{type, name, volume}, name, type});
    }
  } else {
    const std::string type = rc ? rc->instance_type.value_or("") : "";
    for (int64_t k = 0; k < (rc ? rc->instance_count.value_or(1) : 1); ++k) v.push_back({{type, "", volume}, "", type});
  }
  if (v.empty()) v.push_back({});
  const bool managed_spot = d && d->enable_managed_spot_training.value_or(false);
  const bool s3 = d && proto::UsesS3(*d);
  for (HostPlan& plan : v) {
    plan.req.managed_spot = managed_spot;
    plan.req.spot_ok = managed_spot || opt.spot_workers_take_all;
    plan.req.needs_s3 = s3;
  }
  return v;
}

std::vector<CoordinatorCore::Impl::GangPick> CoordinatorCore::Impl::PlaceGang(const std::vector<HostPlan>& plans, bool* ever, std::string* why,
    const std::string& avoid, bool prefer_on_demand,
    const std::string& job, const std::string& definition, size_t* blocking) {
  std::vector<GangPick> picks;
  std::set<std::string> taken;
  // Whether the registered workers could ever serve it: each host's request by some worker,
  // and at least as many workers as hosts.
  *ever = workers.size() >= plans.size() || workers.empty();
  for (size_t i = 0; i < plans.size(); ++i) {
    bool e = false;
    uint32_t g = 0;
    std::string w;
    PlaceHost(plans[i].req, &e, &w, &g);
    if (!e) {
      *ever = false;
      *why = w;
      if (blocking) *blocking = i;
      return {};
    }
  }
  if (!*ever) {
    const std::string& type = plans[0].req.instance_type;
    *why = "a training job of " + std::to_string(plans.size()) + " hosts needs " + std::to_string(plans.size()) +
           " workers, and " + std::to_string(workers.size()) + " are registered (start more workers" +
           (type.empty() ? std::string() : " with --instance-type " + type) + ")";
    return {};
  }
  // Enough workers, and each host's request fits some worker: but a distinct worker for every
  // host? (Two hosts of ml.c5.xlarge with one worker serving it waited forever, as if the
  // cluster were only busy.) A matching of hosts to the workers that could ever serve them.
  auto never_matched = [&]() -> bool {
    if (plans.size() <= 1 || workers.empty()) return false;
    std::vector<std::vector<const std::string*>> can(plans.size());
    for (size_t i = 0; i < plans.size(); ++i) {
      for (const auto& [id, w] : workers) {
        if (CouldEverServe(w, plans[i].req)) can[i].push_back(&id);
      }
    }
    std::map<std::string, size_t> host_of;  // worker -> the host matched to it
    std::function<bool(size_t, std::set<std::string>&)> augment = [&](size_t i, std::set<std::string>& seen) {
      for (const std::string* id : can[i]) {
        if (!seen.insert(*id).second) continue;
        auto m = host_of.find(*id);
        if (m == host_of.end() || augment(m->second, seen)) {
          host_of[*id] = i;
          return true;
        }
      }
      return false;
    };
    for (size_t i = 0; i < plans.size(); ++i) {
      std::set<std::string> seen;
      if (augment(i, seen)) continue;
      *ever = false;
      if (blocking) *blocking = i;
      std::string type = plans[i].req.instance_type.empty() ? "its request" : plans[i].req.instance_type;
      size_t same = 0;
      for (const auto& p : plans) same += p.req.instance_type == plans[i].req.instance_type;
      *why = "a training job of " + std::to_string(plans.size()) + " hosts needs " + std::to_string(same) +
             " distinct workers that serve " + type + ", and " + std::to_string(can[i].size()) +
             " of the registered workers can (start more workers with --instance-type " + type +
             (plans[i].req.instance_group.empty() ? "" : " --instance-group " + plans[i].req.instance_group) + ")";
      return true;
    }
    return false;
  };
  // A worker that runs a host of another multi-host training job takes no host of this one:
  // both gangs' algo-N would resolve to the same address, so fixed rendezvous ports (torchrun's
  // 29500, MPI's sshd) collided and one job's algo-2 could join the other's algo-1. SageMaker
  // gives every training job instances of its own; single-host training jobs still share slots.
  for (const auto& [id, wi] : workers) {
    for (const auto& key : wi.running) {
      auto it = trials.find(key.first);
      if (it != trials.end() && it->second.attempt == key.second && it->second.gang.size() > 1 &&
          !it->second.HostEnded(id)) {
        taken.insert(id);
        break;
      }
    }
  }
  const size_t busy = taken.size();
  for (const auto& plan : plans) {
    bool e = false;
    uint32_t g = 0;
    WorkerInfo* w = PlaceHost(plan.req, &e, why, &g, avoid, prefer_on_demand, &taken, job, definition);
    if (!w && never_matched()) return {};  // checked only when placement fails: it is O(hosts x workers)
    if (!w && busy > 0) {
      *why = std::to_string(busy) +
             " worker(s) run a host of another multi-host training job, and each training job gets hosts of its own";
    }
    if (!w) return {};
    taken.insert(w->reg.worker_id);
    picks.push_back({w, g, &plan});
  }
  return picks;
}

void CoordinatorCore::Impl::LaunchGang(Trial& t, const std::vector<GangPick>& gang, proto::wire::AssignTrial a, int64_t now,
    std::vector<Outgoing>* out, const std::string& chosen) {
  a.hosts.clear();
  a.instance_groups.clear();
  a.host_addresses.clear();
  for (size_t i = 0; i < gang.size(); ++i) {
    const std::string host = "algo-" + std::to_string(i + 1);
    a.hosts.push_back(host);
    a.host_addresses[host] = gang[i].worker->reg.host;
    const HostPlan& plan = *gang[i].plan;
    if (!plan.group.empty()) {
      auto g = std::find_if(a.instance_groups.begin(), a.instance_groups.end(),
                            [&](const auto& x) { return x.name == plan.group; });
      if (g == a.instance_groups.end()) {
        a.instance_groups.push_back({plan.group, plan.type.empty() ? "local" : plan.type, {}});
        g = a.instance_groups.end() - 1;
      }
      g->hosts.push_back(host);
    }
  }
  t.gang.clear();
  std::vector<std::string>& workers_of = t.gang_workers[t.attempt];
  workers_of.clear();
  for (const auto& g : gang) workers_of.push_back(g.worker->reg.worker_id);
  std::vector<std::string> where;
  for (size_t i = 0; i < gang.size(); ++i) {
    WorkerInfo& w = *gang[i].worker;
    const HostPlan& plan = *gang[i].plan;
    Trial::GangHost h;
    h.worker_id = w.reg.worker_id;
    h.group = plan.group;
    h.instance_type = !plan.type.empty() ? plan.type : w.reg.instance_type.empty() ? "local" : w.reg.instance_type;
    if (i == 0) {
      h.gpus = t.gpus;  // algo-1's, picked by Launch
    } else {
      auto& used = worker_gpus_used[w.reg.worker_id];
      h.gpus = PickGpus(w.reg, used, gang[i].gpus);
      for (uint32_t g : h.gpus) used.insert(g);
      w.running.insert({t.name, t.attempt});
    }
    proto::wire::AssignTrial mine = a;
    mine.current_host = a.hosts[i];
    mine.instance_group = h.group;
    mine.instance_type = h.instance_type;
    mine.gpus = h.gpus;
    where.push_back(a.hosts[i] + "=" + h.worker_id);
    t.gang.push_back(std::move(h));
    out->push_back({w.reg.worker_id, std::move(mine)});
  }
  std::string hosts;
  for (const auto& x : where) hosts += (hosts.empty() ? "" : " ") + x;
  if (!t.secondary.empty() && t.secondary.back().status == "Starting") t.secondary.pop_back();
  Secondary(t, "Starting", now, "Launching on " + std::to_string(gang.size()) + " hosts: " + hosts);
  SaveTrial(t);
  Event(now, "Assigned", t.tuning_job, t.name,
        "attempt " + std::to_string(t.attempt) + " on " + std::to_string(gang.size()) + " hosts: " + hosts + chosen);
}

void CoordinatorCore::Impl::StopGangPeers(const Trial& t, const std::string& wid, const std::string& reason, std::vector<Outgoing>* out) {
  if (t.gang.empty()) return;
  proto::wire::StopTrial m;
  m.trial = t.name;
  m.attempt = t.attempt;
  m.reason = "the attempt ended: " + reason;
  m.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
  SendToHosts(t, m, out, wid);
}

void CoordinatorCore::Impl::Launch(TuningJob& j, Trial& trial, WorkerInfo& w, uint32_t gpu_count, int64_t now,
    std::vector<Outgoing>* out, const Trial* after, const std::vector<GangPick>* gang) {
  Trial* t = &trial;
  const auto* def = Definition(j, t->definition_name);
  TakeWarm(w, j, t->definition_name);
  if (gang) {
    for (size_t i = 1; i < gang->size(); ++i) TakeWarm(*(*gang)[i].worker, j, t->definition_name);
  }
  // Given back before it ever started (its worker lost while it was queued there), and launched
  // now in a free slot: it becomes a training job now (as Impl::Promote says), and its history
  // begins here (it showed Downloading and Interrupted of a time it was only queued).
  if (t->Unlaunched() && !after) {
    t->creation_ms = now;
    t->secondary.clear();
  }
  t->attempt++;
  t->assigned_ms = now;
  t->unstarted_assign.reset();
  t->assigned_ahead = after != nullptr;
  t->moving = false;  // a request to move was about an earlier attempt
  t->withdrawing = false;
  t->curve.clear();
  t->state = TrialState::kInProgress;
  t->worker_id = w.reg.worker_id;
  t->started = false;
  t->last_seq = 0;
  // metric_host stays: a metric's final value is the lowest host's across attempts (Trial::metric_host).
  t->metric_host_since.clear();
  t->curve_decided = 0;
  if (!t->secondary.empty() && t->secondary.back().status == "Starting") t->secondary.pop_back();  // was waiting
  if (after) {
    t->after_trial = after->name;
    t->after_attempt = after->attempt;
    successor[{after->name, after->attempt}] = t->name;
    w.queued.insert({t->name, t->attempt});
    Secondary(*t, "Starting", now, "Queued on worker " + w.reg.worker_id + " to start when " + after->name + " ends");
  } else {
    Secondary(*t, "Starting", now, "Launching on worker " + w.reg.worker_id);
    w.running.insert({t->name, t->attempt});
  }

  proto::wire::AssignTrial a;
  a.trial = t->name;
  a.attempt = t->attempt;
  a.tuning_job = j.name;
  a.definition_name = t->definition_name;
  a.hyperparameters = t->hyperparameters;
  a.objective_metric = ObjectiveMetricFor(j, t->definition_name);
  a.hosts = {"algo-1"};
  a.current_host = "algo-1";
  a.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
  a.max_runtime_s = proto::kDefaultMaxRuntimeInSeconds;
  a.instance_type = w.reg.instance_type.empty() ? "local" : w.reg.instance_type;
  std::string chosen_text;  // which instance config, when the definition offers several
  if (def) {
    if (def->algorithm_specification) {
      const auto& alg = *def->algorithm_specification;
      a.image = alg.training_image.value_or(alg.algorithm_name.value_or(""));
      a.input_mode = alg.training_input_mode.value_or("File");
      for (const auto& m : alg.metric_definitions) {
        a.metric_definitions.push_back({m.name.value_or(""), m.regex.value_or("")});
      }
      if (alg.metric_definitions.empty()) {  // a built-in algorithm's (proto/builtin_algorithms.h)
        for (const auto& m : proto::BuiltInMetricDefinitions(alg.training_image.value_or(""), a.objective_metric)) {
          a.metric_definitions.push_back({m.name.value_or(""), m.regex.value_or("")});
        }
      }
    }
    a.environment = def->environment;
    // The resources of this attempt: the definition's ResourceConfig, or the instance config
    // placement chose (HyperParameterTuningResourceConfig), which the worker sees as its
    // ResourceConfig. Single-host placement (a gang's hosts are set by LaunchGang): this host
    // plays the first instance group, or the homogeneous ResourceConfig's type.
    const std::optional<proto::ResourceConfig> chosen = proto::ResourceOption(*def, t->resource_option);
    const proto::ResourceConfig* rc = chosen ? &*chosen : nullptr;
    const size_t option_count = proto::ResourceOptions(*def).size();
    if (rc && !rc->instance_groups.empty()) {
      const auto& g = rc->instance_groups[0];
      a.instance_group = g.instance_group_name.value_or("");
      a.instance_type = g.instance_type.value_or("");
      a.instance_groups.push_back({a.instance_group, a.instance_type, a.hosts});
    } else if (rc && rc->instance_type) {
      a.instance_type = *rc->instance_type;
    }
    if (option_count > 1) {
      chosen_text = " as " + a.instance_type + " (" + std::to_string(t->resource_option + 1) + " of " +
                    std::to_string(option_count) + " instance configs)";
    }
    {
      // MaxRuntimeInSeconds (SageMaker's default when the spec has none: a day) covers all
      // attempts together: this one gets what the earlier ones left, in whole seconds rounded
      // down (rounded up, each retry could train up to a second past the limit: 4.9 s of 4), and
      // at least a second, so a spent budget ends it as MaxRuntimeExceeded at once.
      const int64_t limit_s = def->stopping_condition.value_or(proto::StoppingCondition{}).MaxRuntimeSeconds();
      const int64_t left_ms = limit_s * 1000 - t->training_ms;
      a.max_runtime_s = static_cast<uint32_t>(std::max<int64_t>(1, left_ms / 1000));
    }
    for (const auto& c : def->input_data_config) {
      proto::wire::ChannelSpec cs;
      cs.name = c.channel_name.value_or("");
      // (An S3 object URL, https://..., goes as the s3:// URI it names: proto::StorageUri.)
      if (c.data_source && c.data_source->s3_data_source) {
        cs.uri = proto::StorageUri(c.data_source->s3_data_source->s3_uri.value_or(""));
      }
      if (c.data_source && c.data_source->file_system_data_source) {
        cs.uri = c.data_source->file_system_data_source->directory_path.value_or("");
      }
      cs.content_type = c.content_type.value_or("");
      cs.input_mode = c.input_mode.value_or(a.input_mode);
      if (c.data_source && c.data_source->s3_data_source) {
        cs.s3_data_type = c.data_source->s3_data_source->s3_data_type.value_or("");
        cs.distribution_type = c.data_source->s3_data_source->s3_data_distribution_type.value_or("");
      }
      cs.compression_type = c.compression_type.value_or("");
      cs.record_wrapper_type = c.record_wrapper_type.value_or("");
      a.channels.push_back(std::move(cs));
    }
    if (def->output_data_config) a.output_path = proto::StorageUri(def->output_data_config->s3_output_path.value_or(""));
    if (def->checkpoint_config) {
      // Each training job of the tuning job under its own prefix, so that no trial resumes
      // from another's state; its attempts share it.
      std::string uri = proto::StorageUri(def->checkpoint_config->s3_uri.value_or(""));
      while (!uri.empty() && uri.back() == '/') uri.pop_back();
      a.checkpoint_uri = uri.empty() ? "" : uri + "/" + t->name;
      a.checkpoint_local_path = def->checkpoint_config->local_path.value_or("/opt/ml/checkpoints");
    }
    proto::TuningJobSpec one;
    one.training_job_definition = rc ? proto::WithResourceConfig(*def, *rc) : *def;
    a.spec_json = proto::EncodeCreateRequest(one)["TrainingJobDefinition"].dump();
  }
  // GPUs: placement's count (coordinator/placement.h), never one another trial holds; a
  // queued attempt gets its predecessor's, which it uses only once that one has ended.
  auto& used = worker_gpus_used[w.reg.worker_id];
  const std::vector<uint32_t> mine = after ? after->gpus : PickGpus(w.reg, used, gpu_count);
  for (uint32_t g : mine) {
    used.insert(g);
    a.gpus.push_back(static_cast<int32_t>(g));
  }
  attempt_gpus[{t->name, t->attempt}] = mine;
  t->gpus = mine;
  if (after) {
    a.after_trial = after->name;
    a.after_attempt = after->attempt;
  }

  // A training job the wire cannot carry (its limits are in bytes where SageMaker's are in
  // characters, say): a worker would refuse the assignment unheard and it would be sent again
  // forever. It ends here instead, as its worker would have ended it.
  if (Status wire = a.Validate(); !wire.ok()) {
    proto::wire::TrialExited x;
    x.trial = t->name;
    x.attempt = t->attempt;
    x.status = "Failed";
    x.secondary_status = "Failed";
    x.exit_code = -1;
    x.failure_reason = proto::wire::SanitizeText(
        "ClientError: hpo cannot send this training job to a worker: " + wire.message(), 1024);
    SaveTrial(*t);
    Event(now, "AssignmentRefused", j.name, t->name, x.failure_reason);
    OnExited(w.reg.worker_id, x, now, out);
    return;
  }
  if (gang && gang->size() > 1) {
    LaunchGang(*t, *gang, a, now, out, chosen_text);  // sends every host's AssignTrial
    return;
  }
  SaveTrial(*t);
  Event(now, after ? "AssignedAhead" : "Assigned", j.name, t->name,
        "attempt " + std::to_string(t->attempt) + " on worker " + w.reg.worker_id +
            (mine.empty() ? "" : " with " + std::to_string(mine.size()) + " GPU(s)") + chosen_text +
            (after ? ", to start when " + after->name + " ends" : ""));
  t->unstarted_assign = std::make_shared<const proto::wire::AssignTrial>(a);
  out->push_back({w.reg.worker_id, std::move(a)});
}

// What HoldForGang adds to the waiting reason.
constexpr std::string_view kHoldingNote = "; holding worker(s) ";

void CoordinatorCore::Impl::HoldForGang(TuningJob& j, int64_t now) {
  if (!j.waiting_reason.starts_with(core_detail::kGangWaits)) return;  // not a gang that could run
  if (const size_t at = j.waiting_reason.find(kHoldingNote); at != std::string::npos) j.waiting_reason.resize(at);
  if (opt.gang_hold_after_ms < 0 || j.waiting_since_ms == 0 || now - j.waiting_since_ms < opt.gang_hold_after_ms) return;
  // Only a job with a training job to place: one whose last pending training job expired keeps
  // its old waiting reason while the rest run.
  const Trial* pending = OldestPending(j);
  const bool can_new = static_cast<int64_t>(j.trials.size()) < MaxJobs(j) && j.strategy && !j.Proposing() &&
                       ActiveCount(j) < MaxParallel(j);
  if (!pending && !can_new) return;
  const std::string key = Lower(j.name);
  std::vector<std::string> held;
  for (const auto& [id, h] : held_for) {
    if (h.job == key) held.push_back(id);
  }
  if (held.empty()) {  // not yet in this pass
    const auto defs = j.spec.Definitions();
    if (defs.empty()) return;
    const std::string def = pending ? pending->definition_name : defs[0]->definition_name.value_or("");
    // The first of its instance configs (in order of preference) whose every host has a worker
    // to hold. A set that cannot be completed (a worker draining, another gang's holds) is not
    // held: part of a gang's workers held would only sit idle.
    for (size_t option = 0; option < ResourceOptionCount(j, def) && held.empty(); ++option) {
      const std::vector<HostPlan> plans = HostsFor(j, def, option);
      if (plans.size() <= 1) continue;
      std::vector<std::string> chosen;
      std::vector<HostRequest> reqs;
      for (const auto& plan : plans) {
        const WorkerInfo* best = nullptr;
        std::pair<bool, size_t> best_rank{};
        for (const auto& [id, w] : workers) {
          if (held_for.count(id) || !w.Closed().empty()) continue;
          if (std::find(chosen.begin(), chosen.end(), id) != chosen.end()) continue;
          if (!CouldEverServe(w, plan.req)) continue;
          // Room for the host now first, then the soonest free: the fewest training jobs running,
          // queued or kept warm there.
          const bool now_fits = Fit(opt.catalog, plan.req, w.reg, w.free_slots(key, def), worker_gpus_used[id]).now;
          const std::pair<bool, size_t> rank{now_fits, SIZE_MAX - w.running.size() - w.queued.size() - w.warm.size()};
          if (!best || rank > best_rank) {
            best = &w;
            best_rank = rank;
          }
        }
        if (!best) break;
        chosen.push_back(best->reg.worker_id);
        reqs.push_back(plan.req);
      }
      if (chosen.size() == plans.size()) {
        for (size_t i = 0; i < chosen.size(); ++i) held_for[chosen[i]] = {key, def, reqs[i]};
        held = std::move(chosen);
      }
    }
    if (held.empty()) return;
  }
  std::string names;
  for (const auto& id : held) names += (names.empty() ? "" : ", ") + id;
  j.waiting_reason += std::string(kHoldingNote) + names + " for it as they free up";
}

int CoordinatorCore::Impl::ReservedBefore(const TuningJob& j, const std::map<std::string, TuningJob*>& proposing) const {
  int reserved = 0;
  const auto rank = FairRank(j);
  for (const auto& [key, kp] : proposing) {
    const TuningJob& k = *kp;
    if (&k == &j || !k.Proposing() || k.status != "InProgress" || !k.completion_reason.empty()) continue;
    if (FairRank(k) < rank) reserved += static_cast<int>(k.proposal_n);
  }
  return reserved;
}

int CoordinatorCore::Impl::FreeSlots() const {
  int free = 0;
  for (const auto& [wid, w] : workers) {
    if (w.Closed().empty()) free += std::max(0, w.free_slots());
  }
  return free;
}

bool CoordinatorCore::Impl::OthersBehind(const TuningJob& j) const {
  const int mine = ActiveCount(j);
  for (const auto& [key, kp] : jobs) {
    const TuningJob& k = *kp;
    if (&k == &j || k.status != "InProgress" || !k.completion_reason.empty() || !k.strategy) continue;
    const int active = ActiveCount(k);
    if (active >= MaxParallel(k)) continue;
    const bool wants = HasPending(k) || k.Proposing() || static_cast<int64_t>(k.trials.size()) < MaxJobs(k);
    if (!wants) continue;
    if (active + static_cast<int>(k.Proposing() ? k.proposal_n : 0) < mine) return true;
  }
  return false;
}

void CoordinatorCore::Impl::Schedule(int64_t now, std::vector<Outgoing>* out) {
  std::set<std::string> passed;
  // Gangs that have waited long enough hold their workers before anything is placed in this
  // pass, in scheduling order (held only once they had failed in it, a job looked at before them
  // took each freed slot first, and the gang starved all the same).
  held_for.clear();
  std::vector<TuningJob*> waiting;  // gangs that could run (the rest have nothing to hold)
  for (auto& [key, jp] : jobs) {
    const TuningJob& j = *jp;
    if (j.status == "InProgress" && j.completion_reason.empty() && j.waiting_reason.starts_with(core_detail::kGangWaits)) {
      waiting.push_back(jp.get());
    }
  }
  std::stable_sort(waiting.begin(), waiting.end(),
                   [&](const TuningJob* a, const TuningJob* b) { return FairRank(*a) < FairRank(*b); });
  for (TuningJob* j : waiting) HoldForGang(*j, now);
  // The jobs that may take a slot, in the fair order (FairRank: fewest running, then served
  // longest ago, then oldest), then by key.
  // Only the job picked changes by being placed (its running count, its proposal, its end), so
  // each job is looked at once per pass and the picked one again after its placement: with
  // 2,000 jobs in progress and no free worker, a pass that looked at every job again after each
  // one failed to place took 2,000 x 2,000 looks, five times a second, a core for nothing.
  using Rank = std::tuple<std::tuple<int, uint64_t, int64_t>, std::string>;
  std::set<Rank> order;
  std::map<std::string, TuningJob*> proposing;  // jobs whose proposal is out (they may reserve slots)
  for (const auto& [key, jp] : jobs) {
    if (jp->Proposing()) proposing[key] = jp.get();
  }
  auto consider = [&](const std::string& key, TuningJob& j) {
    if (j.status != "InProgress" || !j.completion_reason.empty() || passed.count(key)) return;
    const int active = ActiveCount(j);
    if (active >= MaxParallel(j)) return;
    // A job whose proposal is out may only place trials it already has (retries).
    if (j.Proposing() && !HasPending(j)) return;
    const bool can_new = static_cast<int64_t>(j.trials.size()) < MaxJobs(j) && j.strategy && !j.Proposing() &&
                         !j.strategy->Exhausted(History(j));
    if (!can_new && !HasPending(j)) {
      MaybeFinish(j, now, out);
      return;
    }
    order.insert({FairRank(j), key});
  };
  for (auto& [key, jp] : jobs) consider(key, *jp);
  while (!order.empty()) {
    // The free slots a job served before it asked for (its proposal is out) are kept for it: a
    // job that has none out takes a free slot only beyond those reserved ahead of it.
    const int free = proposing.empty() ? 0 : FreeSlots();
    auto it = order.begin();
    for (; it != order.end(); ++it) {
      const TuningJob& j = *jobs.at(std::get<1>(*it));
      if (proposing.empty() || j.Proposing()) break;
      const int reserved = ReservedBefore(j, proposing);
      if (reserved == 0 || free > reserved) break;
    }
    if (it == order.end()) break;
    const std::string pick_key = std::get<1>(*it);
    TuningJob* pick = jobs.at(pick_key).get();
    order.erase(it);
    if (!PlaceNext(*pick, now, out)) {
      passed.insert(pick_key);
      HoldForGang(*pick, now);
    } else {  // what it held is its own now, or free for others
      pick->last_placed = ++placements;
      std::erase_if(held_for, [&](const auto& h) { return h.second.job == Lower(pick->name); });
    }
    if (pick->Proposing()) proposing[pick_key] = pick;
    else proposing.erase(pick_key);
    consider(pick_key, *pick);
  }
  MoveQueuedToFreeWorkers(out);
  AssignAhead(now, out);
}

void CoordinatorCore::Impl::Withdraw(Trial& q, int64_t now, std::vector<Outgoing>* out, const std::string& why) {
  // Asked, not taken, as a move is: the worker may have started it as its predecessor ended (its
  // start report on the way), or start it before the request arrives. Taken back at once, it was
  // queued again and ran on another worker as well (320 of 1,500 training jobs ran twice in a
  // scale pass). Its Stopped report gives the slot back (OnExited); its start keeps it there.
  if (q.moving) return;  // asked already (to move, or to make way): its answer settles both
  out->push_back({q.worker_id, MoveRequest(q)});
  q.moving = true;
  q.withdrawing = true;
  Event(now, "Withdrawing", q.tuning_job, q.name,
        "attempt " + std::to_string(q.attempt) + " asked back from worker " + q.worker_id + " if it has not started: " +
            why);
  SaveTrial(q);
}

void CoordinatorCore::Impl::TakeBack(Trial& q, int64_t now, const std::string& why, const std::string& waiting) {
  const std::string from = q.worker_id;
  ReleaseSlot(q, now);
  Event(now, "Withdrawn", q.tuning_job, q.name,
        "attempt " + std::to_string(q.attempt) + " taken back from worker " + from + " before it started: " + why);
  ToQueue(q);
  Secondary(q, "Starting", now, "waiting for a slot (" + waiting + ")");
  SaveTrial(q);
}

void CoordinatorCore::Impl::MoveQueuedToFreeWorkers(std::vector<Outgoing>* out) {
  std::vector<std::pair<std::string, uint32_t>> queued;
  std::set<std::string> answering;  // jobs with a move asked and not yet answered
  for (const auto& [wid, w] : workers) {
    queued.insert(queued.end(), w.queued.begin(), w.queued.end());
    for (const auto* set : {&w.queued, &w.running}) {
      for (const auto& key : *set) {
        auto it = trials.find(key.first);
        if (it != trials.end() && it->second.attempt == key.second && it->second.moving) {
          answering.insert(Lower(it->second.tuning_job));
        }
      }
    }
  }
  std::map<std::string, int> asked;     // per job, moves asked this round: at most its room
  std::map<std::string, int> promised;  // per free worker, the moves asked this round that it takes
  for (const auto& key : queued) {
    auto it = trials.find(key.first);
    if (it == trials.end() || it->second.attempt != key.second) continue;
    Trial& q = it->second;
    TuningJob* j = Job(q.tuning_job);
    // A job whose earlier request is not answered yet asks no more: the free slot it saw is
    // counted for that one until the answer (every queued trial was asked for one free slot, and
    // those given back beyond it waited unstaged, turning assign ahead off for their job).
    if (!j || q.moving || q.stop_requested || j->status != "InProgress" || !j->completion_reason.empty() ||
        HasPending(*j) || answering.count(Lower(j->name))) {
      continue;
    }
    int& n = asked[Lower(j->name)];
    if (ActiveCount(*j) + n >= MaxParallel(*j)) continue;
    // Whether a worker could start it now (its own, busy with the predecessor, cannot).
    Placement p;
    Unplaced u;
    if (!PlaceTraining(*j, q.definition_name, q.worker_id, false, &p, &u)) continue;
    if (p.picks.empty() || p.picks[0].worker == nullptr || p.picks[0].worker->reg.worker_id == q.worker_id) continue;
    WorkerInfo& to = *p.picks[0].worker;
    int& taken = promised[to.reg.worker_id];
    if (taken >= to.free_slots(Lower(j->name), q.definition_name)) continue;  // its free slots are spoken for
    ++taken;
    // Asked, not taken: the worker may have started it as its predecessor ended. Its Stopped
    // report puts it back in the queue for the free worker (OnExited); its start keeps it there.
    out->push_back({q.worker_id, MoveRequest(q)});
    q.moving = true;
    ++n;
    SaveTrial(q);
  }
}

bool CoordinatorCore::Impl::AheadAllowed(const TuningJob& j) const {
  if (!opt.assign_ahead || j.status != "InProgress" || !j.completion_reason.empty() || !j.strategy || j.Proposing() ||
      OffCore(j)) {
    return false;
  }
  if (j.spec.Definitions().size() != 1 || HasPending(j)) return false;
  // A job whose training jobs have only failed so far may be about to give up (five failures and
  // no success): successors queued behind failing ones started, and failed, before the
  // coordinator heard, and were spent past the five.
  if (const JobIndex* ix = Index(j); ix && ix->succeeded == 0 && ix->failed > 0) return false;
  // A job that one result can end (a completion criterion) starts nothing before that result is
  // in: a successor started as its predecessor met the target ran after the job was done, and
  // ended Stopped, counted among the failed objectives.
  const auto& cc = j.spec.hyper_parameter_tuning_job_config->tuning_job_completion_criteria;
  if (cc && (cc->target_objective_metric_value || cc->best_objective_not_improving ||
             (cc->convergence_detected && cc->convergence_detected->complete_on_convergence == "Enabled"))) {
    return false;
  }
  const std::string def = j.spec.Definitions()[0]->definition_name.value_or("");
  for (size_t o = 0; o < ResourceOptionCount(j, def); ++o) {
    if (HostsFor(j, def, o).size() != 1) return false;  // no gangs
  }
  if (static_cast<int64_t>(j.trials.size()) >= MaxJobs(j)) return false;
  switch (j.strategy->ProposeAhead()) {
    case Strategy::Ahead::kAlways: return true;
    case Strategy::Ahead::kNever: return false;
    case Strategy::Ahead::kWhileShort: break;
  }
  const JobIndex* ix = Index(j);
  if (!ix || ix->durations.size() < 3) return false;
  std::vector<int64_t> d(ix->durations.begin(), ix->durations.end());
  std::nth_element(d.begin(), d.begin() + static_cast<long>(d.size() / 2), d.end());
  return d[d.size() / 2] < opt.assign_ahead_max_trial_ms;
}

void CoordinatorCore::Impl::AssignAhead(int64_t now, std::vector<Outgoing>* out) {
  if (!opt.assign_ahead) return;
  std::set<std::string> waiting;  // jobs waiting for a free worker that exists
  for (const auto& [key, jp] : jobs) {
    if (jp->status == "InProgress" && jp->waiting_reason.rfind("waiting for a free worker", 0) == 0) {
      waiting.insert(key);
    }
  }
  auto others_wait = [&](const TuningJob& j) {
    return waiting.size() > 1 || (waiting.size() == 1 && !waiting.count(Lower(j.name)));
  };
  if (!waiting.empty()) {
    std::vector<Trial*> withdraw;
    for (auto& [wid, w] : workers) {
      for (const auto& key : w.queued) {
        auto it = trials.find(key.first);
        TuningJob* j = it == trials.end() ? nullptr : Job(it->second.tuning_job);
        // One being stopped is left to its stop: back in a stopping job's queue it was never
        // placed again, and the job stayed Stopping for good.
        if (j && others_wait(*j) && !it->second.stop_requested) withdraw.push_back(&it->second);
      }
    }
    for (Trial* q : withdraw) Withdraw(*q, now, out);
  }
  std::map<std::string, bool> allowed;  // per job, asked once per round
  for (auto& [wid, w] : workers) {
    if (!w.Closed().empty()) continue;
    const std::vector<std::pair<std::string, uint32_t>> running(w.running.begin(), w.running.end());
    for (const auto& key : running) {
      if (w.queued.size() >= w.reg.slots) break;
      if (successor.count(key)) continue;
      auto it = trials.find(key.first);
      if (it == trials.end()) continue;
      Trial& p = it->second;
      if (p.attempt != key.second || p.state != TrialState::kInProgress || p.stop_requested) continue;
      TuningJob* j = Job(p.tuning_job);
      if (!j) continue;
      auto [ok, fresh] = allowed.try_emplace(Lower(j->name), false);
      if (fresh) ok->second = AheadAllowed(*j) && !others_wait(*j) && !OthersBehind(*j);
      if (!ok->second) continue;
      // A successor starts the moment its predecessor's program ends, while the predecessor
      // uploads its model (still InProgress, as on SageMaker), so the job passes its
      // MaxParallelTrainingJobs for as long as that upload lasts. None is queued while it is over
      // already: each successor got one of its own, and with large models one slot held several
      // training jobs uploading at once (a job of MaxParallelTrainingJobs 2 showed 6 InProgress).
      // At most one upload per slot overlaps its successor.
      if (ActiveCount(*j) > MaxParallel(*j)) continue;
      if (j->strategy->Exhausted(History(*j))) {
        ok->second = false;
        continue;
      }
      Trial* q = CreateTrial(*j, now);
      if (!q) {
        ok->second = false;
        continue;
      }
      q->resource_option = p.resource_option;  // its slot and GPUs, so its instance config too
      Launch(*j, *q, w, 0, now, out, &p);
      if (static_cast<int64_t>(j->trials.size()) >= MaxJobs(*j)) ok->second = false;
    }
  }
}

}  // namespace hpo::coordinator
