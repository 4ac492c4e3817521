#include "cli/spec_commands.h"

#include <algorithm>
#include <cctype>
#include <tuple>
#include <limits>

#include <iostream>

#include "cli/cli_util.h"
#include "common/file_util.h"
#include "common/text.h"
#include "coordinator/autotune.h"
#include "coordinator/grid_strategy.h"
#include "coordinator/placement.h"
#include "proto/codec.h"
#include "proto/validate.h"
#include "worker/agent.h"
#include "worker/gpu_detect.h"

namespace hpo::cli {

namespace {

// Why Kubernetes would refuse `name` as an object's metadata.name (a DNS-1123 subdomain); ""
// when it would not.
std::string KubernetesNameProblem(const std::string& name) {
  auto alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  const bool ok = !name.empty() && name.size() <= 253 && alnum(name.front()) && alnum(name.back()) &&
                  std::all_of(name.begin(), name.end(), [&](char ch) { return alnum(ch) || ch == '-' || ch == '.'; });
  if (ok) return "";
  return "metadata.name \"" + name + "\" is not a Kubernetes name (lower-case letters, digits, '-' and '.', "
         "starting and ending with a letter or digit, at most 253 characters): kubectl apply would refuse it. hpo "
         "reads it; the tuning job is named by spec.hyperParameterTuningJobName";
}

// Whether field path `inner` is `outer` or below it ("a.b[0].c" is within "a.b"); everything is
// within "".
bool PathWithin(const std::string& inner, const std::string& outer) {
  return outer.empty() || inner == outer ||
         (inner.rfind(outer, 0) == 0 && (inner[outer.size()] == '.' || inner[outer.size()] == '['));
}

// Reads, parses and validates one file; prints its errors as "FILE: path: message".
std::optional<proto::ParsedSpec> Check(const std::string& file, const proto::ValidationLimits& limits) {
  auto text = ReadSpecText(file);
  if (!text.ok()) {
    std::cerr << file << ": " << text.status().message() << "\n";
    return std::nullopt;
  }
  proto::FieldErrors errs;
  proto::ParsedSpec partial;
  auto parsed = proto::ParseSpec(*text, &errs, &partial);
  if (!parsed.ok()) {
    // Every problem at once: SageMaker's rules on what could be read too, but none about a field
    // that could not be read (its "is required" would only repeat the error).
    proto::FieldErrors rules = proto::Validate(partial.document.spec, partial.spelling, limits);
    proto::AddYamlLines(partial.yaml_lines, rules);
    // Nor one whose message names a field that could not be read ("trainingJobDefinition is
    // required: set it or trainingJobDefinitions", under a trainingJobDefinitions written as a map).
    auto names_field = [](const std::string& message, const std::string& path) {
      const std::string name = path.substr(path.find_last_of(".]") == std::string::npos ? 0 : path.find_last_of(".]") + 1);
      if (name.empty()) return false;
      for (size_t at = message.find(name); at != std::string::npos; at = message.find(name, at + 1)) {
        const size_t end = at + name.size();
        const bool starts = at == 0 || !std::isalnum(static_cast<unsigned char>(message[at - 1]));
        const bool ends = end == message.size() || !std::isalnum(static_cast<unsigned char>(message[end]));
        if (starts && ends) return true;
      }
      return false;
    };
    auto near_a_decode_error = [&](const proto::FieldError& r) {
      return std::any_of(errs.begin(), errs.end(), [&](const proto::FieldError& e) {
        return PathWithin(r.path, e.path) || PathWithin(e.path, r.path) || names_field(r.message, e.path);
      });
    };
    for (const auto& r : rules) {
      if (!near_a_decode_error(r)) errs.push_back(r);
    }
    for (const auto& e : errs) std::cerr << SpecError(file, e) << "\n";
    return std::nullopt;
  }
  errs = proto::Validate(parsed->document.spec, parsed->spelling, limits);
  proto::AddYamlLines(parsed->yaml_lines, errs);
  if (!errs.empty()) {
    for (const auto& e : errs) std::cerr << SpecError(file, e) << "\n";
    return std::nullopt;
  }
  const auto name = parsed->document.metadata.find("name");
  if (parsed->spelling == proto::Spelling::kCrd && name != parsed->document.metadata.end() && name->is_string()) {
    if (std::string why = KubernetesNameProblem(name->get<std::string>()); !why.empty()) {
      std::cerr << file << ": note: " << why << "\n";
    }
  }
  for (const auto* d : parsed->document.spec.Definitions()) {
    // Over SageMaker's 28 days (2419200 s; its API reference gives that maximum, and a service
    // quota raises it): hpo runs it as given, SageMaker may refuse it.
    if (d->stopping_condition && d->stopping_condition->max_runtime_in_seconds.value_or(0) > 2419200) {
      std::cerr << file << ": note: StoppingCondition.MaxRuntimeInSeconds "
                << *d->stopping_condition->max_runtime_in_seconds
                << " is over 28 days (2419200 s), SageMaker's maximum for a training job unless your account's "
                   "quota was raised: SageMaker may refuse this spec; hpo runs it as given\n";
    }
    // Managed spot without MaxWaitTimeInSeconds: SageMaker asks for it ("It must be present and
    // be greater than or equal to MaxRuntimeInSeconds"); hpo waits as long as MaxRuntimeInSeconds.
    if (d->enable_managed_spot_training.value_or(false) &&
        !(d->stopping_condition && d->stopping_condition->max_wait_time_in_seconds)) {
      std::cerr << file << ": note: EnableManagedSpotTraining is true without StoppingCondition.MaxWaitTimeInSeconds"
                << (d->definition_name ? " (training job definition " + *d->definition_name + ")" : std::string())
                << ": SageMaker expects it (at least MaxRuntimeInSeconds: the time to wait for spot capacity and "
                   "run); hpo runs the spec as given, without a limit on the wait\n";
    }
    // Valid, and likely to lose work: managed spot without checkpoints starts over after each
    // interruption (SageMaker's guide pairs the two).
    if (!d->enable_managed_spot_training.value_or(false) || d->checkpoint_config) continue;
    const std::string which = d->definition_name ? " (training job definition " + *d->definition_name + ")" : "";
    std::cerr << file << ": note: EnableManagedSpotTraining is true without a CheckpointConfig" << which
              << ": a training job interrupted on a spot worker starts over from the beginning. Set "
                 "CheckpointConfig.S3Uri and have the program resume from what it finds in /opt/ml/checkpoints\n";
  }
  return std::move(parsed).value();
}

// `spec`: the file's spec with Autotune's choices made.
std::string Summary(const proto::ParsedSpec& p, const proto::TuningJobSpec& spec) {
  const auto& cfg = *spec.hyper_parameter_tuning_job_config;
  size_t ranges = 0;
  auto count = [&](const std::optional<proto::ParameterRanges>& r) {
    if (!r) return;
    ranges += r->integer_parameter_ranges.size() + r->continuous_parameter_ranges.size() +
              r->categorical_parameter_ranges.size();
  };
  count(cfg.parameter_ranges);
  for (const auto* d : spec.Definitions()) count(d->hyper_parameter_ranges);
  std::string out = std::string("valid (") + (p.spelling == proto::Spelling::kCrd ? "CRD" : "SageMaker JSON") + ", " +
                    cfg.strategy.value_or("?") + ", " + std::to_string(ranges) + " range" + (ranges == 1 ? "" : "s");
  const auto& rl = cfg.resource_limits;
  if (rl && rl->max_number_of_training_jobs) {
    const int64_t n = *rl->max_number_of_training_jobs;
    out += ", " + std::to_string(n) + (n == 1 ? " job" : " jobs");
  } else if (cfg.strategy.value_or("") == "Grid") {  // left out: as many as the grid has, said
    if (auto grid = coordinator::GridStrategy::Create(spec); grid.ok()) {
      const size_t n = (*grid)->Size();
      out += ", " + std::to_string(n) + (n == 1 ? " job" : " jobs") + " (every Grid combination)";
    }
  }
  if (rl && rl->max_parallel_training_jobs) out += ", " + std::to_string(*rl->max_parallel_training_jobs) + " parallel";
  size_t defs = spec.Definitions().size();
  if (defs > 1) out += ", " + std::to_string(defs) + " definitions";
  return out + ")";
}

}  // namespace

void AddValidateCommand(CLI::App& app) {
  auto files = std::make_shared<std::vector<std::string>>();
  auto limits = std::make_shared<proto::ValidationLimits>();
  auto catalog = std::make_shared<std::string>();
  auto served = std::make_shared<std::vector<std::string>>();
  auto known = std::make_shared<std::set<std::string>>();
  CLI::App* c = app.add_subcommand("validate", "Check tuning job specs against SageMaker's rules");
  AddQuotaOptions(c, limits.get());
  c->add_option("--instance-catalog", *catalog,
                "Instance types of your own (the coordinator's --instance-catalog JSON): a spec may name them "
                "besides SageMaker's training instance types");
  c->add_option("--instance-type", *served,
                "A type of your own that workers serve (hpo worker --instance-type TYPE); repeatable");
  c->add_option("files", *files,
                "Spec files: CRD YAML/JSON or SageMaker CreateHyperParameterTuningJob JSON (- for standard input)")
      ->required();
  c->footer(
      "Reports every problem at once, each as FILE:LINE: FIELD PATH: WHAT IS WRONG (no LINE\n"
      "for JSON), in the spelling the\n"
      "file uses. The spelling is detected from the content. With Autotune {Mode: Enabled} it also\n"
      "lists what Autotune chose: a range for each AutoParameters hint, and the Strategy, limits,\n"
      "early stopping, retries and convergence settings the spec leaves out (the README's Autotune\n"
      "section has the rules); the job runs with exactly these. Fields SageMaker acts on that hpo\n"
      "only keeps (VpcConfig, KMS keys, EnableInterContainerTrafficEncryption) are listed as notes.\n"
      "So are the values of a CRD in YAML that `kubectl apply` would have refused, typed by its YAML\n"
      "reader otherwise than the CRD's schema (`epochs: 10` where a string belongs; a quoted \"10\"\n"
      "where an integer does): hpo reads them by the field's type.\n\n"
      "Example:\n  hpo validate examples/*.yaml examples/quickstart.json\n\n"
      "Exit codes: 0 every file is valid, 2 any is not (or cannot be read).");
  c->callback([files, limits, catalog, served, known] {
    *known = KnownInstanceTypes(*catalog, *served);
    limits->known_instance_types = known.get();  // SageMaker's types and these
    bool all_ok = true;
    for (const auto& f : *files) {
      auto p = Check(f, *limits);
      if (!p) {
        all_ok = false;
        continue;
      }
      // What the coordinator will run: Autotune's choices made, and checked again.
      auto tuned = coordinator::ResolveAutotune(p->document.spec, *limits, p->spelling);
      if (!tuned.ok()) {
        std::cerr << f << ": " << tuned.status().message() << "\n";
        all_ok = false;
        continue;
      }
      proto::FieldErrors errs = proto::Validate(tuned->spec, p->spelling, *limits);
      for (const auto& e : errs) std::cerr << f << ": with Autotune's choices: " << e.ToString() << "\n";
      if (!errs.empty()) {
        all_ok = false;
        continue;
      }
      std::cout << f << ": " << Summary(*p, tuned->spec) << "\n";
      for (const std::string& note : proto::BuiltInAlgorithmNotes(tuned->spec, p->spelling)) {
        std::cout << "  note: " << note << "\n";
      }
      for (const std::string& note : proto::NotEnforced(tuned->spec, p->spelling)) {
        std::cout << "  note: " << note << "\n";
      }
      if (!p->kubectl_notes.empty()) {
        std::cout << "  note: `kubectl apply` would refuse this resource: kubectl reads "
                  << (p->kubectl_notes.size() == 1 ? "one value" : std::to_string(p->kubectl_notes.size()) + " values")
                  << " as another type than the CRD's schema has there (hpo reads them by the field's type and runs "
                     "the spec as it is):\n";
        for (const auto& n : p->kubectl_notes) std::cout << "    " << n.ToString() << "\n";
      }
      for (const std::string& note : LocalProgramNotes(tuned->spec, f)) std::cout << "  note: " << note << "\n";
      for (const std::string& note : ContractEnvironmentNotes(tuned->spec)) std::cout << "  note: " << note << "\n";
      if (tuned->choices.empty()) continue;
      std::cout << "  Autotune chose:\n";
      for (const auto& c : tuned->choices) {
        std::cout << "    " << c.field << ": " << c.value << "\n      " << c.reason << "\n";
      }
    }
    Exit(all_ok ? 0 : 2);
  });
}

void AddConvertCommand(CLI::App& app) {
  struct Args {
    std::string file, to, output;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("convert", "Print a spec in the other spelling");
  c->add_option("file", a->file, "A spec file (- for standard input)")->required();
  c->add_option("--to", a->to, "crd (the Kubernetes document) or api (the SageMaker JSON request); "
                               "default: the spelling the file is not in")
      ->check(CLI::IsMember({"crd", "api"}));
  c->add_option("-o,--output", a->output, "yaml or json (default: yaml for crd, json for api)")
      ->check(CLI::IsMember({"yaml", "json"}));
  c->footer(
      "A spec that is not well formed is refused (exit 2), but conversion is not running it: the\n"
      "quotas (MaxParallelTrainingJobs at most 100, ...) and the instance types that only a cluster\n"
      "knows are not checked. `hpo validate` checks those too.\n\n"
      "Example:\n  hpo convert examples/quickstart.yaml --to api > quickstart.json\n"
      "  hpo convert quickstart.json --to crd | kubectl apply -f -");
  c->callback([a] {
    // Conversion is not running: a coordinator's quotas are its own business.
    auto p = Check(a->file, proto::ValidationLimits::Unlimited());
    if (!p) Exit(2);
    std::string to = a->to.empty() ? (p->spelling == proto::Spelling::kCrd ? "api" : "crd") : a->to;
    nlohmann::ordered_json j;
    if (to == "crd") {
      j = proto::EncodeCrdDocument(p->document);
      // What the ACK controller's CRD has no field for: hpo reads it, a cluster would drop it.
      const auto& spec = p->document.spec;
      std::vector<std::string> missing;
      if (const auto& cfg = spec.hyper_parameter_tuning_job_config) {
        if (cfg->strategy_config) missing.push_back("strategyConfig");
        if (cfg->random_seed) missing.push_back("randomSeed");
        if (cfg->resource_limits && cfg->resource_limits->max_runtime_in_seconds) {
          missing.push_back("resourceLimits.maxRuntimeInSeconds");
        }
        if (const auto& cc = cfg->tuning_job_completion_criteria) {
          if (cc->best_objective_not_improving) missing.push_back("bestObjectiveNotImproving");
          if (cc->convergence_detected) missing.push_back("convergenceDetected");
        }
      }
      // (autotune and autoParameters are in the ACK controller's CRD since the version of the
      // project's seed: the note said a cluster would drop them.)
      bool environment = false, resource = false, compression = false, pending = false;
      for (const auto* d : spec.Definitions()) {
        environment = environment || !d->environment.empty();
        resource = resource || d->hyper_parameter_tuning_resource_config.has_value();
        compression = compression || (d->output_data_config && d->output_data_config->compression_type);
        pending = pending || (d->stopping_condition && d->stopping_condition->max_pending_time_in_seconds);
      }
      if (environment) missing.push_back("environment");
      if (resource) missing.push_back("hyperParameterTuningResourceConfig");
      if (compression) missing.push_back("outputDataConfig.compressionType");
      if (pending) missing.push_back("stoppingCondition.maxPendingTimeInSeconds");
      if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
        std::cerr << a->file << ": note: the ACK controller's HyperParameterTuningJob CRD has no " << list
                  << "; hpo reads " << (missing.size() == 1 ? "it" : "them") << ", but a Kubernetes cluster would refuse "
                  << (missing.size() == 1 ? "it" : "them") << " (kubectl's strict field validation) or drop "
                  << (missing.size() == 1 ? "it" : "them") << " without a word (without it)"
                  << (resource ? " (for kubectl, give a resourceConfig with one instanceType)" : "") << "\n";
      }
    } else {
      j = proto::EncodeCreateRequest(p->document.spec);
      // A SageMaker request has no Kubernetes metadata: say what does not carry over.
      std::vector<std::string> dropped;
      for (const auto& [key, value] : p->document.metadata.items()) {
        if (key == "name") {
          const auto& job = p->document.spec.hyper_parameter_tuning_job_name;
          // The name written for Kubernetes is the job's, lower-cased (convert --to crd).
          if (value.is_string() && job && value.get<std::string>() != *job &&
              value.get<std::string>() != AsciiLower(*job)) {
            dropped.push_back("metadata.name");
          }
        } else {
          dropped.push_back("metadata." + key);
        }
      }
      if (!dropped.empty()) {
        std::string list;
        for (const auto& d : dropped) list += (list.empty() ? "" : ", ") + d;
        std::cerr << a->file << ": note: " << list
                  << " (Kubernetes only) left out; a SageMaker request names the job by HyperParameterTuningJobName\n";
      }
      // A relative program is the spec file's neighbour: hpo submit and hpo run resolve it, but
      // sent by the aws CLI or boto3 it reaches the coordinator as it is, which refuses it.
      for (const auto* d : p->document.spec.Definitions()) {
        const auto& as = d->algorithm_specification;
        const std::string image = as && as->training_image ? *as->training_image : "";
        if (!proto::IsRelativeFileImage(image)) continue;
        std::cerr << a->file << ": note: TrainingImage " << image
                  << " is relative to the spec file's directory: hpo submit and hpo run resolve it, but a coordinator "
                     "refuses it from the aws CLI or boto3; to send it so, make it absolute (file:///...)\n";
      }
    }
    std::string fmt = a->output.empty() ? (to == "crd" ? "yaml" : "json") : a->output;
    if (fmt == "yaml") {
      std::cout << proto::ToYaml(j);
    } else {
      std::cout << j.dump(2) << "\n";
    }
    Exit(0);
  });
}

void AddInstanceTypesCommand(CLI::App& app) {
  auto catalog_file = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>("table");
  CLI::App* c = app.add_subcommand("instance-types", "List the instance types hpo knows and which this machine covers");
  c->add_option("--instance-catalog", *catalog_file,
                "JSON file of instance types of your own, merged over the shipped ml.* ones (as hpo coordinator "
                "and hpo run take it)");
  c->add_option("-o,--output", *output, "table or json (default: table)")->check(CLI::IsMember({"table", "json"}));
  c->footer(
      "What each type needs (GPUs, GPU memory, vCPUs, memory) and whether a worker on this machine,\n"
      "started without --instance-type, serves it. A spec may name any SageMaker training type; a\n"
      "worker serves a type of this catalog when its machine covers the entry, and any type it is\n"
      "told to serve (hpo worker --instance-type TYPE, GPUs still needed).\n\n"
      "Examples:\n  hpo instance-types\n  hpo instance-types --instance-catalog my-types.json -o json");
  c->callback([catalog_file, output] {
    const coordinator::InstanceCatalog catalog = LoadInstanceCatalog(*catalog_file);
    // This machine as a worker without --instance-type would register.
    proto::wire::Register here;
    here.worker_id = "this machine";
    here.cpus = worker::DetectCpus();
    here.memory_mb = worker::DetectMemoryMb();
    here.slots = 1;
    for (const worker::GpuDevice& g : worker::DetectGpus().devices) {
      proto::wire::GpuInfo gi;
      gi.index = static_cast<uint32_t>(g.index);
      gi.name = g.name;
      gi.memory_mb = g.memory_mb;
      here.gpus.push_back(gi);
    }
    // Families in order, sizes by number within one (ml.c5.xlarge, ml.c5.2xlarge, ml.c5.4xlarge).
    const std::set<std::string> known = catalog.Types();
    std::vector<std::string> types(known.begin(), known.end());
    auto key = [](const std::string& t) {
      const size_t dot = t.rfind('.');
      const std::string size = dot == std::string::npos ? t : t.substr(dot + 1);
      const size_t digits = size.find_first_not_of("0123456789");
      const long n = digits == 0 ? 1 : std::stol(size.substr(0, digits));
      const std::string rest = size.substr(digits == std::string::npos ? size.size() : digits);
      const int rank = rest == "large" ? 0 : rest == "xlarge" ? 1 : 2;  // large < xlarge < Nxlarge
      return std::make_tuple(t.substr(0, dot == std::string::npos ? 0 : dot), rank == 1 && n > 1 ? 2 : rank, n, rest);
    };
    std::sort(types.begin(), types.end(), [&](const std::string& a, const std::string& b) { return key(a) < key(b); });
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const std::string& type : types) {
      const coordinator::InstanceSpec& s = *catalog.Find(type);
      const coordinator::FitResult fit = coordinator::Fit(catalog, {type, "", 0}, here, 1, {});
      std::string lacks = fit.why;
      if (const size_t at = lacks.find("; worker this machine "); at != std::string::npos) {
        lacks = lacks.substr(at + std::string("; worker this machine ").size());  // "has 0 GPUs"
      }
      rows.push_back({{"InstanceType", type},
                      {"Gpus", s.gpus},
                      {"GpuModel", s.gpu_model},
                      {"GpuMemoryGiB", static_cast<double>(s.gpu_memory_mb) / 1024.0},
                      {"VCpus", s.vcpus},
                      {"MemoryGiB", static_cast<double>(s.memory_mb) / 1024.0},
                      {"ThisMachine", fit.ever},
                      {"Why", fit.ever ? "" : lacks}});
    }
    if (*output == "json") {
      std::cout << nlohmann::ordered_json{{"InstanceTypes", rows}}.dump(2) << "\n";
      Exit(0);
    }
    std::printf("%-22s %-22s %6s %10s  %s\n", "TYPE", "GPUS", "VCPUS", "MEMORY", "THIS MACHINE");
    for (const auto& r : rows) {
      std::string gpus = "-";
      if (r["Gpus"].get<uint32_t>() > 0) {
        gpus = std::to_string(r["Gpus"].get<uint32_t>()) + " " + r["GpuModel"].get<std::string>();
        if (r["GpuMemoryGiB"].get<double>() > 0) gpus += " " + Num(r["GpuMemoryGiB"].get<double>()) + " GiB";
      }
      const std::string memory = Num(r["MemoryGiB"].get<double>()) + " GiB";
      const std::string fits = r["ThisMachine"].get<bool>() ? "yes" : "no: " + r["Why"].get<std::string>();
      std::printf("%-22s %-22s %6u %10s  %s\n", r["InstanceType"].get<std::string>().c_str(), gpus.c_str(),
                  r["VCpus"].get<uint32_t>(), memory.c_str(), fits.c_str());
    }
    std::printf("\nthis machine: %u CPUs, %s GiB of memory, %zu GPU(s)\n", here.cpus,
                Num(static_cast<double>(here.memory_mb) / 1024.0).c_str(), here.gpus.size());
    Exit(0);
  });
}

}  // namespace hpo::cli
