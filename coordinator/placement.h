// coordinator/placement.h: which worker may run which training job host.
//
// What it is: the instance-type catalog (what `ml.g5.xlarge` needs: GPUs, GPU memory, vCPUs,
// memory) and the fit rule between one host of a training job and one registered worker. The
// core (coordinator/core.h) asks it when it schedules; nothing here changes state.
//
// The rule. A host request names an instance type (ResourceConfig.InstanceType, or its instance
// group's) and, with InstanceGroups, a group name.
// - A worker that advertises an instance type (`hpo worker --instance-type`) serves exactly that
//   type. A worker that advertises none serves a type when the catalog knows it and the worker's
//   totals cover it: at least the entry's GPU count (each with at least its memory, when both
//   are known), vCPUs and memory. The GPU model is informational (an H100 serves an A100 type).
// - A worker that advertises an instance group (`--instance-group`) serves only hosts of that
//   group; one without serves any group whose type it fits.
// - "Now" additionally needs a free slot and, for a GPU type, that many GPUs not held by another
//   trial: GPUs are never shared. vCPUs and memory are not reserved per trial (slots bound the
//   concurrency): on-prem users size `--slots` for their machines, and a catalog of cloud shapes
//   should not forbid two small CPU trials on one large host.
// - A spot worker (`hpo worker --spot`: capacity that may be reclaimed) serves only hosts that
//   may run on spot (`HostRequest::spot_ok`: the definition's EnableManagedSpotTraining, as on
//   SageMaker, where a training job without it never runs on spot capacity and is never
//   interrupted; or every host, with `hpo coordinator --spot-workers-take all`).
// - A worker that registered without an S3 configuration (no credentials: Register.no_s3) serves
//   no host of a training job that reads or writes s3:// (HostRequest::needs_s3).
// - A type the catalog does not know can be served only by workers advertising it.
//
// GPUs per trial: the catalog's count for the type; for a type the catalog does not know (served
// by a worker that advertises it), an equal share of the worker's GPUs per slot.
//
// Thread safety: immutable values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/messages.h"

namespace hpo::coordinator {

struct InstanceSpec {
  uint32_t gpus = 0;
  std::string gpu_model;       // e.g. "A10G"; informational
  uint64_t gpu_memory_mb = 0;  // per GPU; 0 = any
  uint32_t vcpus = 0;
  uint64_t memory_mb = 0;
  std::string Describe() const;  // "1 GPU (A10G, 24 GiB), 4 vCPUs, 16 GiB"
};

class InstanceCatalog {
 public:
  // SageMaker's ml.* training types (proto/training_instance_types.inc) as EC2 documents their
  // hardware, but those placement.cc lists as left out (Trainium, types whose figures are not
  // known here): an --instance-catalog entry serves them.
  static InstanceCatalog Defaults();
  // A JSON object of entries, {"ml.x": {"gpus": 1, "gpu_model": "A10G", "gpu_memory_gib": 24,
  // "vcpus": 4, "memory_gib": 16}, ...}; every key optional but at least one; unknown keys are
  // errors (InvalidArgument naming the entry and the key).
  static Result<InstanceCatalog> FromJson(const std::string& text);
  // Entries of `other` replace or add to this catalog's.
  void Merge(const InstanceCatalog& other);
  const InstanceSpec* Find(const std::string& type) const;
  size_t size() const { return entries_.size(); }
  std::set<std::string> Types() const;

 private:
  std::map<std::string, InstanceSpec> entries_;
};

// One host of a training job.
struct HostRequest {
  std::string instance_type;   // "" when the definition names none
  std::string instance_group;  // "" outside InstanceGroups
  int64_t volume_gb = 0;       // ResourceConfig.VolumeSizeInGB; 0 = none asked
  bool managed_spot = false;   // EnableManagedSpotTraining: spot workers first (the core's ranking)
  bool spot_ok = false;        // a spot worker may serve it (managed_spot, or the coordinator's policy)
  bool needs_s3 = false;       // it reads or writes s3:// (proto::UsesS3): not for a worker without S3
};

struct FitResult {
  bool ever = false;  // the worker's totals could serve it (false: never, `why` says why)
  bool now = false;   // it can start there now
  uint32_t gpus = 0;  // GPUs the host gets
  std::string why;    // why not (ever or now), for people
  bool short_of_disk = false;  // not now for want of free disk for VolumeSizeInGB (`why` says how much)
  bool no_s3 = false;          // never, for want of S3 credentials alone: its type, group and disk fit
  bool spot = false;           // never, for being a spot worker alone (the job is not managed spot)
};

// `free_slots` and `gpus_in_use` describe the worker now.
FitResult Fit(const InstanceCatalog& catalog, const HostRequest& request, const proto::wire::Register& worker,
              int free_slots, const std::set<uint32_t>& gpus_in_use);

// The free GPUs (lowest indices first) a host gets on this worker, `count` of them, or fewer
// when there are not enough (the caller checks with Fit first).
std::vector<uint32_t> PickGpus(const proto::wire::Register& worker, const std::set<uint32_t>& gpus_in_use,
                               uint32_t count);

}  // namespace hpo::coordinator
