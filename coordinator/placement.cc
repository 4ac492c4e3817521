#include "coordinator/placement.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string_view>

#include <nlohmann/json.hpp>

#include "proto/codec.h"

namespace hpo::coordinator {

namespace {

constexpr uint64_t kGiB = 1024;  // in MB

// Memory as a double: c4.xlarge has 7.5 GiB and c5n.xlarge 10.5 (whole MB, so the conversion is exact).
InstanceSpec Cpu(uint32_t vcpus, double gib) {
  return InstanceSpec{0, "", 0, vcpus, static_cast<uint64_t>(gib * kGiB)};
}
InstanceSpec Gpu(uint32_t gpus, const char* model, uint64_t gpu_gib, uint32_t vcpus, uint64_t gib) {
  return InstanceSpec{gpus, model, gpu_gib * kGiB, vcpus, gib * kGiB};
}

// vCPUs of a size as EC2 names the sizes of its x86 families: large 2, xlarge 4, Nxlarge 4N.
uint32_t SizeVcpus(std::string_view size) {
  if (size == "large") return 2;
  uint32_t n = 1;
  if (size != "xlarge") std::from_chars(size.data(), size.data() + size.size(), n);
  return 4 * n;
}

// The sizes of a CPU family in which every size has the same memory per vCPU (EC2's c families from c5 on have
// 2 GiB, m 4, r 8): a list of size names reads against EC2's table more easily than 200 assignments.
void CpuFamily(std::map<std::string, InstanceSpec>& e, const std::string& family, uint32_t gib_per_vcpu,
               std::initializer_list<std::string_view> sizes) {
  for (std::string_view size : sizes) {
    const uint32_t vcpus = SizeVcpus(size);
    e[family + "." + std::string(size)] = Cpu(vcpus, vcpus * gib_per_vcpu);
  }
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
  // SageMaker's training types (proto/training_instance_types.inc), each with the hardware of the EC2 type of the
  // same name without "ml." (AWS's published EC2 specifications; GPU memory per GPU, as EC2 states it). Left out,
  // so that a worker serves them only through an --instance-catalog entry or its --instance-type:
  // - ml.trn1.2xlarge, ml.trn1.32xlarge, ml.trn1n.32xlarge, ml.trn2.48xlarge: Trainium accelerators, not NVIDIA
  //   GPUs; an entry of vCPUs and memory alone would let any large CPU host serve them.
  // - ml.g7.2xlarge, ml.g7.4xlarge, ml.g7.8xlarge, ml.g7.12xlarge, ml.g7.24xlarge, ml.g7.48xlarge,
  //   ml.p6-b300.48xlarge, ml.p6e-gb200.36xlarge: their numbers were not confirmed when this table was written,
  //   and a wrong entry places trials on hosts that cannot run them (or refuses hosts that can).
  // tests/coordinator/placement_test.cc holds the same list: a type added to the .inc fails there until it is here.

  // Compute optimised: 2 GiB per vCPU, except c4 (older) and c5n (network optimised), which EC2 sizes otherwise.
  e["ml.c4.xlarge"] = Cpu(4, 7.5);
  e["ml.c4.2xlarge"] = Cpu(8, 15);
  e["ml.c4.4xlarge"] = Cpu(16, 30);
  e["ml.c4.8xlarge"] = Cpu(36, 60);
  CpuFamily(e, "ml.c5", 2, {"xlarge", "2xlarge", "4xlarge", "9xlarge", "18xlarge"});
  e["ml.c5n.xlarge"] = Cpu(4, 10.5);
  e["ml.c5n.2xlarge"] = Cpu(8, 21);
  e["ml.c5n.4xlarge"] = Cpu(16, 42);
  e["ml.c5n.9xlarge"] = Cpu(36, 96);
  e["ml.c5n.18xlarge"] = Cpu(72, 192);
  CpuFamily(e, "ml.c6i", 2,
            {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge"});
  CpuFamily(e, "ml.c7i", 2,
            {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"});
  CpuFamily(e, "ml.c7i-flex", 2, {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"});
  CpuFamily(e, "ml.c8i", 2,
            {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge", "48xlarge",
             "96xlarge"});
  CpuFamily(e, "ml.c8i-flex", 2, {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"});
  // General purpose: 4 GiB per vCPU; t3 (burstable) too, but for its medium size.
  CpuFamily(e, "ml.m4", 4, {"xlarge", "2xlarge", "4xlarge", "10xlarge", "16xlarge"});
  CpuFamily(e, "ml.m5", 4, {"large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge"});
  CpuFamily(e, "ml.m6i", 4,
            {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge"});
  CpuFamily(e, "ml.m7i", 4,
            {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"});
  CpuFamily(e, "ml.m7i-flex", 4, {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"});
  CpuFamily(e, "ml.m8i", 4,
            {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge",
             "48xlarge", "96xlarge"});
  CpuFamily(e, "ml.m8i-flex", 4, {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"});
  e["ml.t3.medium"] = Cpu(2, 4);
  CpuFamily(e, "ml.t3", 4, {"large", "xlarge", "2xlarge"});
  // Memory optimised: 8 GiB per vCPU (r5d is r5 with local NVMe).
  CpuFamily(e, "ml.r5", 8, {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"});
  CpuFamily(e, "ml.r5d", 8, {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"});
  CpuFamily(e, "ml.r6i", 8,
            {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge"});
  CpuFamily(e, "ml.r7i", 8,
            {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"});
  CpuFamily(e, "ml.r8i", 8,
            {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge",
             "48xlarge", "96xlarge"});
  CpuFamily(e, "ml.r8i-flex", 8, {"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"});

  // g4dn: NVIDIA T4, 16 GiB.
  e["ml.g4dn.xlarge"] = Gpu(1, "T4", 16, 4, 16);
  e["ml.g4dn.2xlarge"] = Gpu(1, "T4", 16, 8, 32);
  e["ml.g4dn.4xlarge"] = Gpu(1, "T4", 16, 16, 64);
  e["ml.g4dn.8xlarge"] = Gpu(1, "T4", 16, 32, 128);
  e["ml.g4dn.12xlarge"] = Gpu(4, "T4", 16, 48, 192);
  e["ml.g4dn.16xlarge"] = Gpu(1, "T4", 16, 64, 256);
  // g5: NVIDIA A10G, 24 GiB.
  e["ml.g5.xlarge"] = Gpu(1, "A10G", 24, 4, 16);
  e["ml.g5.2xlarge"] = Gpu(1, "A10G", 24, 8, 32);
  e["ml.g5.4xlarge"] = Gpu(1, "A10G", 24, 16, 64);
  e["ml.g5.8xlarge"] = Gpu(1, "A10G", 24, 32, 128);
  e["ml.g5.12xlarge"] = Gpu(4, "A10G", 24, 48, 192);
  e["ml.g5.16xlarge"] = Gpu(1, "A10G", 24, 64, 256);
  e["ml.g5.24xlarge"] = Gpu(4, "A10G", 24, 96, 384);
  e["ml.g5.48xlarge"] = Gpu(8, "A10G", 24, 192, 768);
  // g6: NVIDIA L4, 24 GiB.
  e["ml.g6.xlarge"] = Gpu(1, "L4", 24, 4, 16);
  e["ml.g6.2xlarge"] = Gpu(1, "L4", 24, 8, 32);
  e["ml.g6.4xlarge"] = Gpu(1, "L4", 24, 16, 64);
  e["ml.g6.8xlarge"] = Gpu(1, "L4", 24, 32, 128);
  e["ml.g6.12xlarge"] = Gpu(4, "L4", 24, 48, 192);
  e["ml.g6.16xlarge"] = Gpu(1, "L4", 24, 64, 256);
  e["ml.g6.24xlarge"] = Gpu(4, "L4", 24, 96, 384);
  e["ml.g6.48xlarge"] = Gpu(8, "L4", 24, 192, 768);
  // g6e: NVIDIA L40S, 48 GiB.
  e["ml.g6e.xlarge"] = Gpu(1, "L40S", 48, 4, 32);
  e["ml.g6e.2xlarge"] = Gpu(1, "L40S", 48, 8, 64);
  e["ml.g6e.4xlarge"] = Gpu(1, "L40S", 48, 16, 128);
  e["ml.g6e.8xlarge"] = Gpu(1, "L40S", 48, 32, 256);
  e["ml.g6e.12xlarge"] = Gpu(4, "L40S", 48, 48, 384);
  e["ml.g6e.16xlarge"] = Gpu(1, "L40S", 48, 64, 512);
  e["ml.g6e.24xlarge"] = Gpu(4, "L40S", 48, 96, 768);
  e["ml.g6e.48xlarge"] = Gpu(8, "L40S", 48, 192, 1536);
  // g7e: NVIDIA RTX PRO 6000 Blackwell Server Edition, 96 GiB.
  e["ml.g7e.2xlarge"] = Gpu(1, "RTX PRO 6000", 96, 8, 64);
  e["ml.g7e.4xlarge"] = Gpu(1, "RTX PRO 6000", 96, 16, 128);
  e["ml.g7e.8xlarge"] = Gpu(1, "RTX PRO 6000", 96, 32, 256);
  e["ml.g7e.12xlarge"] = Gpu(2, "RTX PRO 6000", 96, 48, 512);
  e["ml.g7e.24xlarge"] = Gpu(4, "RTX PRO 6000", 96, 96, 1024);
  e["ml.g7e.48xlarge"] = Gpu(8, "RTX PRO 6000", 96, 192, 2048);
  // p2: NVIDIA K80, 12 GiB per GPU (a K80 board is two such GPUs).
  e["ml.p2.xlarge"] = Gpu(1, "K80", 12, 4, 61);
  e["ml.p2.8xlarge"] = Gpu(8, "K80", 12, 32, 488);
  e["ml.p2.16xlarge"] = Gpu(16, "K80", 12, 64, 732);
  // p3 and p3dn: NVIDIA V100, 16 GiB (p3dn 32 GiB).
  e["ml.p3.2xlarge"] = Gpu(1, "V100", 16, 8, 61);
  e["ml.p3.8xlarge"] = Gpu(4, "V100", 16, 32, 244);
  e["ml.p3.16xlarge"] = Gpu(8, "V100", 16, 64, 488);
  e["ml.p3dn.24xlarge"] = Gpu(8, "V100", 32, 96, 768);
  // p4d and p4de: NVIDIA A100, 40 GiB (p4de 80 GiB).
  e["ml.p4d.24xlarge"] = Gpu(8, "A100", 40, 96, 1152);
  e["ml.p4de.24xlarge"] = Gpu(8, "A100", 80, 96, 1152);
  // p5: NVIDIA H100, 80 GiB; p5e and p5en: NVIDIA H200, 141 GiB; p6-b200: NVIDIA B200, 180 GiB.
  e["ml.p5.4xlarge"] = Gpu(1, "H100", 80, 16, 256);
  e["ml.p5.48xlarge"] = Gpu(8, "H100", 80, 192, 2048);
  e["ml.p5e.48xlarge"] = Gpu(8, "H200", 141, 192, 2048);
  e["ml.p5en.48xlarge"] = Gpu(8, "H200", 141, 192, 2048);
  e["ml.p6-b200.48xlarge"] = Gpu(8, "B200", 180, 192, 2048);
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
    r.why = "worker " + worker.worker_id + " has " +
            (worker.disk_mb < 1024 ? std::to_string(worker.disk_mb) + " MiB" : std::to_string(worker.disk_mb / 1024) + " GiB") +
            " free for trials, the training job asks VolumeSizeInGB " + std::to_string(request.volume_gb);
    r.short_of_disk = true;
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
      // The catalog has the sizes AWS names (a T4's 16 GiB); the driver reports what is usable,
      // up to about 6 % less (15360 MiB for that T4, 23028 for an A10G's 24 GiB), and the kernel
      // keeps a few percent of the memory: a machine of exactly the type's hardware fits it.
      auto close_to = [](uint64_t has, uint64_t needs) {
        return has + std::max<uint64_t>(512, needs / 14) >= needs;  // 1/14: about 7 %
      };
      size_t big_enough = 0;
      for (const auto& g : worker.gpus) {
        if (spec->gpu_memory_mb == 0 || g.memory_mb == 0 || close_to(g.memory_mb, spec->gpu_memory_mb)) ++big_enough;
      }
      std::string lacks;
      if (big_enough < spec->gpus) {
        lacks = std::to_string(worker.gpus.size()) + " GPUs" +
                (big_enough < worker.gpus.size() ? " (" + std::to_string(big_enough) + " with enough memory)" : "");
      } else if (worker.cpus < spec->vcpus) {
        lacks = std::to_string(worker.cpus) + " CPUs";
      } else if (!close_to(worker.memory_mb, spec->memory_mb)) {
        lacks = Gib(worker.memory_mb) + " of memory";
      }
      if (!lacks.empty()) {
        r.why = type + " needs " + spec->Describe() + "; worker " + worker.worker_id + " has " + lacks;
        return r;
      }
      r.gpus = spec->gpus;
    }
  }
  if (request.needs_s3 && worker.no_s3) {
    r.why = "worker " + worker.worker_id +
            " has no S3 credentials (see its log; AWS_ACCESS_KEY_ID or ~/.aws/credentials, and hpo worker "
            "--s3-endpoint for a store other than AWS), and the training job reads or writes s3://";
    r.no_s3 = true;
    return r;
  }
  if (worker.spot && !request.spot_ok) {
    r.why = "worker " + worker.worker_id +
            " is a spot worker (hpo worker --spot), and the training job does not enable managed spot training "
            "(EnableManagedSpotTraining)";
    r.spot = true;
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
