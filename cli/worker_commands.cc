#include "cli/worker_commands.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "cli/client.h"

namespace hpo::cli {
namespace {

using Json = nlohmann::ordered_json;

struct WorkersArgs {
  std::string url = DefaultCoordinator();
  std::string state_dir;  // a running hpo run's, instead of a coordinator
  std::string output = "table";
  std::string id;
  std::string reason;
  double timeout_s = -1;  // drain: < 0 = wait as long as it takes; 0 = look once
  bool now = false;      // drain: evict what runs there instead of waiting for it
};

Endpoint Target(const WorkersArgs& a) { return a.state_dir.empty() ? CoordinatorAt(a.url) : RunOf(a.state_dir); }
// What a suggested command needs to reach the same target (it said `hpo workers uncordon ID`,
// which asked the default coordinator for an hpo run's worker).
std::string TargetFlags(const WorkersArgs& a) {
  return a.state_dir.empty() ? CoordinatorFlag(a.url) : " --state-dir " + ShellWord(a.state_dir);
}

void AddTarget(CLI::App* c, WorkersArgs* a) {
  c->add_option("--coordinator", a->url, "Coordinator URL (default $HPO_COORDINATOR, else http://127.0.0.1:7780)");
  c->add_option("--state-dir", a->state_dir, "The running hpo run that keeps its state in DIR, instead of a coordinator")
      ->excludes(c->get_option("--coordinator"));
}

Json Workers(const Endpoint& at) { return Request(at, "GET", "/hpo/v1/workers").value("Workers", Json::array()); }

std::string Count(const Json& w, const char* key) { return std::to_string(w.value(key, 0)); }

void PrintTable(const Json& workers) {
  struct Row {
    std::string id, state, jobs, gpus, disk, type, host, heard, reason, foreign;
  };
  std::vector<Row> rows;
  for (const auto& w : workers) {
    Row r;
    r.id = w.value("WorkerId", "");
    r.state = w.value("State", "");
    auto ago = [&](const char* key) {
      char text[32];
      std::snprintf(text, sizeof text, "%.1f s ago", w.value(key, 0.0));
      return std::string(text);
    };
    if (!w.value("Registered", true)) {
      // Lost or gone (it says when it was last heard), or an id cordoned with no worker now.
      const bool departed = w.contains("GoneSecondsAgo");
      if (!departed) r.state += " (not registered)";
      r.jobs = r.gpus = r.disk = "-";
      r.type = w.value("InstanceType", "-");
      r.host = w.value("Host", "-");
      r.heard = departed ? ago("LastHeardSecondsAgo") : "-";
    } else {
      r.jobs = Count(w, "Running") + "/" + Count(w, "Slots");
      if (w.value("QueuedAhead", 0) > 0) r.jobs += " +" + Count(w, "QueuedAhead");
      // Slots held by another coordinator's training jobs: the worker is fuller than Running says.
      if (w.value("Foreign", 0) > 0) r.foreign = Count(w, "Foreign");
      const Json gpus = w.value("Gpus", Json::array());
      size_t used = 0;
      for (const auto& g : gpus) used += g.value("InUse", false) ? 1 : 0;
      r.gpus = gpus.empty() ? "-" : std::to_string(used) + "/" + std::to_string(gpus.size()) + " " + gpus[0].value("Name", "");
      const uint64_t disk = w.value("FreeDiskMiB", uint64_t{0});
      r.disk = disk == 0 ? "-" : disk >= 10240 ? std::to_string(disk / 1024) + " GiB" : std::to_string(disk) + " MiB";
      r.type = w.value("InstanceType", "");
      if (r.type.empty()) r.type = "(what fits)";  // no --instance-type: the catalog types its machine covers
      if (w.value("Spot", false)) r.type += " spot";
      r.host = w.value("Host", "");
      r.heard = ago("LastHeardSecondsAgo");
    }
    r.reason = w.value("Reason", "");
    rows.push_back(std::move(r));
  }
  const std::vector<std::string> head = {"WORKER", "STATE", "RUNNING/SLOTS", "GPUS", "FREE DISK", "TYPE", "HOST", "HEARD"};
  auto cells = [](const Row& r) {
    return std::vector<std::string>{r.id, r.state, r.jobs, r.gpus, r.disk, r.type, r.host, r.heard};
  };
  std::vector<std::vector<std::string>> table = {head};
  for (const Row& r : rows) table.push_back(cells(r));
  const std::vector<std::string> lines = AlignedRows(table);
  std::cout << lines[0] << "\n";
  for (size_t k = 0; k < rows.size(); ++k) {
    const Row& r = rows[k];
    std::cout << lines[k + 1] << "\n";
    if (!r.reason.empty()) std::cout << "  " << r.reason << "\n";
    if (!r.foreign.empty()) {
      std::cout << "  also runs " << r.foreign
                << " training job(s) of another coordinator (or state directory), which hold their slots\n";
    }
  }
  if (rows.empty()) std::cout << "(no worker has registered)\n";
}

// The worker's entry, or null when the coordinator does not list it.
Json Find(const Json& workers, const std::string& id) {
  for (const auto& w : workers) {
    if (w.value("WorkerId", "") == id) return w;
  }
  return nullptr;
}

// What Ctrl-C (or SIGTERM) while `hpo workers drain` waits says: the worker stays cordoned (it
// ended without a word, and the capacity stayed away). Written by the handler, so made before.
std::string drain_interrupted_note;

extern "C" void DrainInterrupted(int) {
  const ssize_t n = ::write(2, drain_interrupted_note.data(), drain_interrupted_note.size());
  (void)n;
  ::_exit(130);
}

void Drain(const WorkersArgs& a) {
  const Endpoint at = Target(a);
  const Json found = Find(Workers(at), a.id);
  if (found.is_null() || !found.value("Registered", true)) {
    Fail(1, "no worker " + a.id + " is registered with " + at.who +
                " (hpo workers lists them; `hpo workers cordon " + a.id + "` keeps one that is away from new work)");
  }
  // A cordoned worker keeps its reason, unless another is given.
  const bool keep_reason = found.value("State", "") == "Cordoned" && a.reason.empty();
  const std::string reason = keep_reason        ? found.value("Reason", "")
                             : a.reason.empty() ? "drained by an operator (hpo workers drain)"
                                                : a.reason;
  if (a.now) {
    const Json r = Request(at, "POST", "/hpo/v1/workers/evict", {{"WorkerId", a.id}, {"Reason", reason}});
    std::string names;
    for (const auto& n : r.value("Evicted", Json::array())) names += (names.empty() ? "" : ", ") + n.get<std::string>();
    std::cerr << "hpo: " << a.id << " is cordoned; "
              << (names.empty() ? std::string("nothing was running there to stop")
                                : "stopping " + names +
                                      " (each gets its grace period and uploads its checkpoints, then runs again on "
                                      "another worker without spending a retry)")
              << "\n";
  } else if (!keep_reason) {
    Request(at, "POST", "/hpo/v1/workers/cordon", {{"WorkerId", a.id}, {"Reason", reason}});
  }
  std::cerr << "hpo: " << a.id << " is cordoned: no new training job goes there; waiting for what runs there to end"
            << (a.timeout_s > 0    ? " (at most " + Num(a.timeout_s) + " s)"
                : a.timeout_s == 0 ? " (looking once: --timeout 0)"
                                   : "")
            << "\n";
  drain_interrupted_note = "\nhpo: interrupted: " + a.id + " stays cordoned and what runs there goes on; `hpo workers uncordon " +
                           a.id + TargetFlags(a) + "` lets it take training jobs again, `hpo workers drain " + a.id +
                           TargetFlags(a) + "` waits again\n";
  struct sigaction sa{};
  sa.sa_handler = DrainInterrupted;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const auto start = std::chrono::steady_clock::now();
  std::string said;
  // A coordinator that restarts is waited for; it knows its workers again only as they register
  // again (within a few heartbeats), so a worker away is given kRegisterAgainS before it counts
  // as gone.
  constexpr double kRegisterAgainS = 15;
  AwayWaiter away("waiting for " + a.id + " to drain");
  away.Answered();  // it has: the cordon above (a restart right after it is waited for too)
  double away_since = -1;  // seconds into the wait when the worker was first seen not registered; -1: it is
  for (;;) {
    auto got = GetUnlessAway(at, "/hpo/v1/workers");
    if (!got.ok()) {
      if (a.timeout_s >= 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= a.timeout_s) {
        Fail(1, a.id + " is not known to be drained after " + Num(a.timeout_s) + " s: " + got.status().message() +
                    " (it stays cordoned once the coordinator is back)");
      }
      if (away.Wait(got.status())) continue;
      Fail(3, got.status().message());
    }
    away.Answered();
    const Json w = Find(Items(*got, "Workers", at.who + " at " + at.url), a.id);
    const int running = w.is_null() ? 0 : w.value("Running", 0) + w.value("QueuedAhead", 0);
    if (w.is_null() || !w.value("Registered", true)) {
      const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (away_since < 0) {
        away_since = now;
        std::cerr << "hpo: " << a.id << " is not registered with " << at.who << " now; waiting up to "
                  << Num(kRegisterAgainS) << " s for it to register again\n";
      }
      const bool out_of_time = a.timeout_s >= 0 && now >= a.timeout_s;
      if (!out_of_time && now - away_since < kRegisterAgainS) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      std::cout << a.id << " has left the coordinator (lost or stopped); it stays cordoned until `hpo workers uncordon "
                << a.id << TargetFlags(a) << "`\n";
      Exit(0);
    }
    if (away_since >= 0) {
      std::cerr << "hpo: " << a.id << " is registered again\n";
      away_since = -1;
    }
    if (running == 0) {
      std::cout << a.id << " is drained: nothing runs there. Stop or service it now; `hpo workers uncordon " << a.id
                << TargetFlags(a) << "` when it should take training jobs again\n";
      Exit(0);
    }
    std::string names;
    for (const auto& n : w.value("RunningTrainingJobs", Json::array())) names += (names.empty() ? ": " : ", ") + n.get<std::string>();
    // The names are of those running; the queued ahead are counted apart (it said 8 and named 4).
    const int queued = w.value("QueuedAhead", 0);
    const std::string now = std::to_string(running - queued) + " training job(s) still on " + a.id + names +
                            (queued > 0 ? " (and " + std::to_string(queued) + " queued ahead there)" : "");
    if (now != said) {
      std::cerr << "hpo: " << now << "\n";
      said = now;
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (a.timeout_s >= 0 && waited >= a.timeout_s) {
      Fail(1, a.id + " is not drained after " + Num(a.timeout_s) + " s: " + now +
                  (a.now ? " (it stays cordoned; a program that ignores SIGTERM is killed at the end of its grace "
                           "period, so wait longer)"
                         : " (it stays cordoned; `hpo workers drain " + a.id +
                               " --now` stops them to run elsewhere without spending a retry, or wait longer)"));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

void AddWorkersCommand(CLI::App& app) {
  auto a = std::make_shared<WorkersArgs>();
  CLI::App* c = app.add_subcommand("workers", "List a cluster's workers; cordon, drain and uncordon them");
  AddTarget(c, a.get());
  c->add_option("-o,--output", a->output, "table (for people) or json (GET /hpo/v1/workers); default table")
      ->check(CLI::IsMember({"table", "json"}));
  c->footer(
      "Each worker: its state (Open; Cordoned by an operator; Draining after a spot interruption\n"
      "notice, or while it shuts down; Leaving once it has shut down with nothing left there; Resting\n"
      "after infrastructure errors in a row; Lost when the coordinator stopped hearing from it; Left\n"
      "when it shut down) and why,\n"
      "training jobs running of its slots (+N queued ahead to start there), GPUs in use, free disk\n"
      "for trials (as of its last heartbeat), instance type, host, and when the coordinator last\n"
      "heard from it.\n\n"
      "A cordon holds across the worker's and the coordinator's restarts until it is lifted; an id\n"
      "that is not registered may be cordoned ahead of its return.\n\n"
      "Examples:\n"
      "  hpo workers\n"
      "  hpo workers drain gpu-node-7 --reason 'GPU 3 ECC errors'   # then service the machine\n"
      "  hpo workers drain gpu-node-7 --now    # stop what runs there; it resumes elsewhere\n"
      "  hpo workers uncordon gpu-node-7\n"
      "  hpo workers --state-dir hpo-runs/quickstart-20261202-091500   # an hpo run's local workers");
  c->callback([a, c] {
    if (!c->get_subcommands().empty()) return;  // a subcommand ran (and exited)
    const Json workers = Workers(Target(*a));
    if (a->output == "json") {
      std::cout << Json{{"Workers", workers}}.dump(2) << "\n";
    } else {
      PrintTable(workers);
    }
    Exit(0);
  });

  CLI::App* cordon = c->add_subcommand("cordon", "Send a worker no new training job (what runs there finishes)");
  cordon->add_option("id", a->id, "The worker's id (hpo workers lists them)")->required();
  cordon->add_option("--reason", a->reason, "Why, for hpo workers, the events and the jobs' waiting reasons");
  AddTarget(cordon, a.get());
  cordon->footer(
      "What runs there goes on; nothing new is placed there, across the worker's and the coordinator's\n"
      "restarts, until `hpo workers uncordon ID`. An id that is not registered now may be cordoned\n"
      "ahead of its return (a note says so, in case it is a typo).\n\n"
      "Example:\n  hpo workers cordon gpu-node-7 --reason 'fan noise; check Monday'");
  cordon->callback([a] {
    Request(Target(*a), "POST", "/hpo/v1/workers/cordon", {{"WorkerId", a->id}, {"Reason", a->reason}});
    std::cout << a->id << " is cordoned: no new training job goes there (`hpo workers drain " << a->id
              << TargetFlags(*a) << "` waits for what runs there; `hpo workers uncordon " << a->id << TargetFlags(*a)
              << "` lifts it)\n";
    // An id no worker has now is cordoned too (it takes nothing when it comes), but it may be a
    // typo, which said only "is cordoned" and left the real worker taking training jobs.
    bool known = false;
    for (const auto& w : Workers(Target(*a))) known = known || (w.value("WorkerId", "") == a->id && w.value("Registered", true));
    if (!known) {
      std::cerr << "hpo: note: no worker " << a->id << " is registered now; it takes nothing new if it comes. If that "
                << "is a typo, `hpo workers" << TargetFlags(*a) << "` lists the ids (and `hpo workers uncordon " << a->id
                << TargetFlags(*a) << "` undoes this)\n";
    }
    Exit(0);
  });

  CLI::App* uncordon = c->add_subcommand("uncordon", "Let a cordoned worker take training jobs again");
  uncordon->add_option("id", a->id, "The worker's id")->required();
  AddTarget(uncordon, a.get());
  uncordon->footer(
      "Lifts a cordon (hpo workers cordon, or a drain's): the worker takes training jobs again at once.\n"
      "It does not end a rest after infrastructure errors (Resting): a training job that ends otherwise\n"
      "there, or restarting the worker, does.\n\n"
      "Example:\n  hpo workers uncordon gpu-node-7");
  uncordon->callback([a] {
    Request(Target(*a), "POST", "/hpo/v1/workers/uncordon", {{"WorkerId", a->id}});
    std::cout << a->id << " takes training jobs again\n";
    Exit(0);
  });

  CLI::App* drain = c->add_subcommand("drain", "Cordon a worker and wait until nothing runs there");
  drain->add_option("id", a->id, "The worker's id")->required();
  drain->add_option(
      "--reason", a->reason,
      "Why, shown beside the worker in hpo workers (default: drained by an operator (hpo workers drain))");
  drain->add_option("--timeout", a->timeout_s, "Give up after this many seconds, exit 1, and leave it cordoned (0: look once; default: wait)")
      ->check(CLI::Range(0.0, 1e7));
  drain->add_flag("--now", a->now,
                  "Stop the training jobs running there instead of waiting for them: each runs again on another "
                  "worker, from its checkpoints, without spending a retry");
  AddTarget(drain, a.get());
  drain->footer(
      "Training jobs running there finish as they would (a long one may take hours: --timeout bounds\n"
      "the wait), or with --now are stopped as a spot interruption stops them: SIGTERM, their grace\n"
      "period, a last checkpoint upload, then they go back to the queue for another worker, with no\n"
      "retry spent. Those queued to start there go to other workers. Exit 0 once nothing runs there.\n\n"
      "  hpo workers drain gpu-node-7 --now --reason 'kernel upgrade'");
  drain->callback([a] { Drain(*a); });
}

}  // namespace hpo::cli
