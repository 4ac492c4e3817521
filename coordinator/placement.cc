#include "coordinator/placement.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "proto/codec.h"

namespace hpo::coordinator {

namespace {

constexpr uint64_t kGiB = 1024;  // in MB

InstanceSpec Cpu(uint32_t vcpus, uint64_t gib) { return InstanceSpec{0, "", 0, vcpus, gib * kGiB}; }
InstanceSpec Gpu(uint32_t gpus, const char* model, uint64_t gpu_gib, uint32_t vcpus, uint64_t gib) {
  return InstanceSpec{gpus, model, gpu_gib * kGiB, vcpus, gib * kGiB};
}

std::string Gib(uint64_t mb) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g GiB", static_cast<double>(mb) / kGiB);
  return buf;
}

}  // namespace

std::string InstanceSpec::Describe() const {
  std::string s;
  if (gpus > 0) {
    s = std::to_string(gpus) + (gpus == 1 ? " GPU" : " GPUs");
    std::string detail = gpu_model;
    if (gpu_memory_mb > 0) detail += (detail.empty() ? "" : ", ") + Gib(gpu_memory_mb);
    if (!detail.empty()) s += " (" + detail + ")";
    s += ", ";
  }
  s += std::to_string(vcpus) + " vCPUs, " + Gib(memory_mb);
  return s;
}

InstanceCatalog InstanceCatalog::Defaults() {
  InstanceCatalog c;
  auto& e = c.entries_;
  // General purpose and compute optimised (no GPU).
  e["ml.m5.large"] = Cpu(2, 8);
  e["ml.m5.xlarge"] = Cpu(4, 16);
  e["ml.m5.2xlarge"] = Cpu(8, 32);
  e["ml.m5.4xlarge"] = Cpu(16, 64);
  e["ml.m5.12xlarge"] = Cpu(48, 192);
  e["ml.m5.24xlarge"] = Cpu(96, 384);
  e["ml.c5.xlarge"] = Cpu(4, 8);
  e["ml.c5.2xlarge"] = Cpu(8, 16);
  e["ml.c5.4xlarge"] = Cpu(16, 32);
  e["ml.c5.9xlarge"] = Cpu(36, 72);
  e["ml.c5.18xlarge"] = Cpu(72, 144);
  // GPU.
  e["ml.g4dn.xlarge"] = Gpu(1, "T4", 16, 4, 16);
  e["ml.g4dn.2xlarge"] = Gpu(1, "T4", 16, 8, 32);
  e["ml.g4dn.12xlarge"] = Gpu(4, "T4", 16, 48, 192);
  e["ml.g5.xlarge"] = Gpu(1, "A10G", 24, 4, 16);
  e["ml.g5.2xlarge"] = Gpu(1, "A10G", 24, 8, 32);
  e["ml.g5.4xlarge"] = Gpu(1, "A10G", 24, 16, 64);
  e["ml.g5.12xlarge"] = Gpu(4, "A10G", 24, 48, 192);
  e["ml.g5.48xlarge"] = Gpu(8, "A10G", 24, 192, 768);
  e["ml.g6.xlarge"] = Gpu(1, "L4", 24, 4, 16);
  e["ml.g6.12xlarge"] = Gpu(4, "L4", 24, 48, 192);
  e["ml.p3.2xlarge"] = Gpu(1, "V100", 16, 8, 61);
  e["ml.p3.8xlarge"] = Gpu(4, "V100", 16, 32, 244);
  e["ml.p3.16xlarge"] = Gpu(8, "V100", 16, 64, 488);
  e["ml.p3dn.24xlarge"] = Gpu(8, "V100", 32, 96, 768);
  e["ml.p4d.24xlarge"] = Gpu(8, "A100", 40, 96, 1152);
  e["ml.p4de.24xlarge"] = Gpu(8, "A100", 80, 96, 1152);
  e["ml.p5.48xlarge"] = Gpu(8, "H100", 80, 192, 2048);
  return c;
}

Result<InstanceCatalog> InstanceCatalog::FromJson(const std::string& text) {
  // proto::ParseJson refuses a repeated key: {"ml.x": {...}, "ml.x": {"gpus": 2}} kept the later,
  // incomplete entry without a word.
  auto parsed = proto::ParseJson(text);
  if (!parsed.ok()) return Status::InvalidArgument("instance catalog: " + parsed.status().message());
  const nlohmann::ordered_json& j = *parsed;
  if (!j.is_object()) return Status::InvalidArgument("instance catalog: expected a JSON object of instance types");
  InstanceCatalog c;
  for (const auto& [type, v] : j.items()) {
    const std::string at = "instance catalog: \"" + type + "\": ";
    if (type.empty() || type.size() > 64) return Status::InvalidArgument(at + "instance type names are 1-64 characters");
    if (!v.is_object() || v.empty()) {
      return Status::InvalidArgument(at + "expected an object with gpus, gpu_model, gpu_memory_gib, vcpus, memory_gib");
    }
    InstanceSpec s;
    for (const auto& item : v.items()) {
      // Named, not a structured binding: a lambda may not capture one before clang 16.
      const std::string& key = item.key();
      const auto& x = item.value();
      auto number = [&](double max) -> Result<double> {
        if (!x.is_number() || x.get<double>() < 0 || x.get<double>() > max || !std::isfinite(x.get<double>())) {
          return Status::InvalidArgument(at + key + " must be a number from 0 to " + std::to_string(static_cast<int64_t>(max)));
        }
        return x.get<double>();
      };
      if (key == "gpu_model") {
        if (!x.is_string()) return Status::InvalidArgument(at + "gpu_model must be a string");
        s.gpu_model = x.get<std::string>();
        continue;
      }
      double limit = key == "gpus" ? 64 : key == "vcpus" ? 4096 : 1 << 20;
      if (key != "gpus" && key != "vcpus" && key != "gpu_memory_gib" && key != "memory_gib") {
        return Status::InvalidArgument(at + "unknown key \"" + key +
                                       "\" (allowed: gpus, gpu_model, gpu_memory_gib, vcpus, memory_gib)");
      }
      Result<double> n = number(limit);
      if (!n.ok()) return n.status();
      if ((key == "gpus" || key == "vcpus") && *n != std::floor(*n)) {
        return Status::InvalidArgument(at + key + " must be a whole number, not " + x.dump());
      }
      if (key == "gpus") s.gpus = static_cast<uint32_t>(*n);
      if (key == "vcpus") s.vcpus = static_cast<uint32_t>(*n);
      if (key == "gpu_memory_gib") s.gpu_memory_mb = static_cast<uint64_t>(*n * kGiB);
      if (key == "memory_gib") s.memory_mb = static_cast<uint64_t>(*n * kGiB);
    }
    c.entries_[type] = s;
  }
  return c;
}

void InstanceCatalog::Merge(const InstanceCatalog& other) {
  for (const auto& [k, v] : other.entries_) entries_[k] = v;
}

std::set<std::string> InstanceCatalog::Types() const {
  std::set<std::string> types;
  for (const auto& [type, spec] : entries_) types.insert(type);
  return types;
}

const InstanceSpec* InstanceCatalog::Find(const std::string& type) const {
  auto it = entries_.find(type);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<uint32_t> PickGpus(const proto::wire::Register& worker, const std::set<uint32_t>& gpus_in_use,
                               uint32_t count) {
  std::vector<uint32_t> free;
  for (const auto& g : worker.gpus) {
    if (!gpus_in_use.count(g.index)) free.push_back(g.index);
  }
  std::sort(free.begin(), free.end());
  if (free.size() > count) free.resize(count);
  return free;
}

FitResult Fit(const InstanceCatalog& catalog, const HostRequest& request, const proto::wire::Register& worker,
              int free_slots, const std::set<uint32_t>& gpus_in_use) {
  FitResult r;
  const std::string& type = request.instance_type;
  if (!worker.instance_group.empty() && worker.instance_group != request.instance_group) {
    r.why = "worker " + worker.worker_id + " serves only instance group " + worker.instance_group;
    return r;
  }
  // VolumeSizeInGB against the free space the worker's work directory had at its latest heartbeat
  // (or registration; 0 = not reported).
  if (request.volume_gb > 0 && worker.disk_mb > 0 && static_cast<uint64_t>(request.volume_gb) * 1024 > worker.disk_mb) {
    r.why = "worker " + worker.worker_id + " has " + std::to_string(worker.disk_mb / 1024) +
            " GiB free for trials, the training job asks VolumeSizeInGB " + std::to_string(request.volume_gb);
    return r;
  }
  const InstanceSpec* spec = catalog.Find(type);
  // Without a catalog entry to say how many: an equal share of the worker's GPUs per slot.
  const uint32_t share = worker.slots > 0 ? static_cast<uint32_t>(worker.gpus.size() / worker.slots) : 0;
  if (!worker.instance_type.empty()) {
    if (worker.instance_type != type) {
      r.why = "worker " + worker.worker_id + " serves " + worker.instance_type + ", not " +
              (type.empty() ? std::string("an unnamed type") : type);
      return r;
    }
    r.gpus = spec ? spec->gpus : share;
    if (r.gpus > worker.gpus.size()) {
      r.why = "worker " + worker.worker_id + " advertises " + type + " but has " +
              std::to_string(worker.gpus.size()) + " GPUs; the catalog says " + std::to_string(r.gpus);
      return r;
    }
  } else {
    if (type.empty()) {
      // No type asked for (a spec without ResourceConfig): any worker, a share of its GPUs.
      r.gpus = share;
    } else if (!spec) {
      r.why = "instance type " + type +
              " is not in the coordinator's catalog (add it with --instance-catalog) and worker " + worker.worker_id +
              " does not advertise it (--instance-type " + type + ")";
      return r;
    } else {
      size_t big_enough = 0;
      for (const auto& g : worker.gpus) {
        if (spec->gpu_memory_mb == 0 || g.memory_mb == 0 || g.memory_mb + 512 >= spec->gpu_memory_mb) ++big_enough;
      }
      std::string lacks;
      if (big_enough < spec->gpus) {
        lacks = std::to_string(worker.gpus.size()) + " GPUs" +
                (big_enough < worker.gpus.size() ? " (" + std::to_string(big_enough) + " with enough memory)" : "");
      } else if (worker.cpus < spec->vcpus) {
        lacks = std::to_string(worker.cpus) + " CPUs";
      } else if (worker.memory_mb + 512 < spec->memory_mb) {
        lacks = Gib(worker.memory_mb) + " of memory";
      }
      if (!lacks.empty()) {
        r.why = type + " needs " + spec->Describe() + "; worker " + worker.worker_id + " has " + lacks;
        return r;
      }
      r.gpus = spec->gpus;
    }
  }
  if (worker.spot && !request.spot_ok) {
    r.why = "worker " + worker.worker_id +
            " is a spot worker (hpo worker --spot), and the training job does not enable managed spot training "
            "(EnableManagedSpotTraining)";
    return r;
  }
  r.ever = true;
  if (free_slots <= 0) {
    r.why = "worker " + worker.worker_id + " has no free slot";
    return r;
  }
  if (r.gpus > 0) {
    size_t free_gpus = 0;
    for (const auto& g : worker.gpus) free_gpus += gpus_in_use.count(g.index) ? 0 : 1;
    if (free_gpus < r.gpus) {
      r.why = "worker " + worker.worker_id + " has " + std::to_string(free_gpus) + " free GPUs of the " +
              std::to_string(r.gpus) + " needed";
      return r;
    }
  }
  r.now = true;
  return r;
}

}  // namespace hpo::coordinator
