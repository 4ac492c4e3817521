// worker/container.h: running a trial's trainingImage in a container runtime.
//
// What it is: SageMaker runs a training job as `docker run <image> train` (reference/
// sagemaker-semantics.md §4). A worker with a container runtime (podman, docker or apptainer,
// chosen by `hpo worker --container-runtime`) does the same for a trainingImage that is not a
// local program: ContainerRunCommand() builds the runtime's command line, which the agent runs as
// the trial's process (worker/process.h), so output, metrics, exit codes and the exit report
// work exactly as in process mode.
//
// What the container gets:
//   - the attempt's root bind-mounted on /opt/ml, the checkpoint directory on
//     checkpointConfig.localPath, FastFile file-system channels (read-only unless "rw") and, for a
//     multi-host trial, the generated hosts file on /etc/hosts: the same BindMount list a process
//     trial gets in its mount namespace, as `-v source:target[:ro]` (`--bind` for apptainer);
//   - exactly the trial's environment (TRAINING_JOB_NAME, SM_*, the definition's Environment), as
//     `-e NAME=VALUE` (`--env` with apptainer's --cleanenv): nothing of the worker's; PATH and
//     HOME come from the image;
//   - the trial slot's GPUs only: podman `--device nvidia.com/gpu=<index>` (CDI: the host needs
//     `nvidia-ctk cdi generate`), docker `--gpus device=<i,j>` (nvidia-container-toolkit), and
//     CUDA_VISIBLE_DEVICES renumbered 0..n-1 as the container sees them; apptainer `--nv` with
//     CUDA_VISIBLE_DEVICES naming the host's indices (apptainer shares the host's device view);
//   - the network: `--network none` when enableNetworkIsolation is true (apptainer: `--net
//     --network none`, root only), else the configured network (default `host`, like a process
//     trial: a multi-host trial's hosts reach each other at their worker addresses by algo-N);
//   - labels hpo.worker=<ContainerOwner()> and hpo.trial=<training job> and the name ContainerName(),
//     `--rm` so it is gone after its exit, `--pull <policy>` (`missing` for policy always: the
//     worker has just pulled it).
// Pulls: with policy missing or always, podman and docker trials have their image pulled before
// the program starts (PullImage, when ImagePresent says it is absent, or always), so a
// download is not training time and shows as SageMaker's DownloadingTrainingImage. An image
// reference may name a transport podman pulls from without a registry (`oci-archive:/x.tar`,
// `docker-archive:/x.tar`: an air-gapped cluster's images); such a reference is never "present":
// it is pulled (copied) for every training job, which then runs the pulled image's ID. Apptainer
// fetches what it runs itself.
// An image is never pulled when the policy is "never" (an offline cluster): CheckImage() then
// says, before the trial starts, that the image is not present on this worker, and the trial
// fails as a ClientError naming it.
//
// Stopping: the agent stops a container trial with ContainerStopCommand() (`podman stop -t
// <grace> <name>`: SIGTERM to the container's main process, SIGKILL after the grace period),
// and keeps its own SIGTERM/SIGKILL of the runtime's client process as a fallback after a margin.
// The client forwards SIGTERM to the container (sig-proxy), so either way the training program
// sees SIGTERM first. Apptainer has no named containers: its processes are the client's
// children and a process-group stop reaches them.
//
// Exit codes: the program's, passed through by the runtime; 125 from podman or docker (or 126
// with the OCI runtime's error) means the runtime itself failed (IsRuntimeFailure), which the agent reports as an infrastructure error
// (retried) with the runtime's last output line.
//
// Errors: ResolveContainerRuntime returns InvalidArgument for an unknown runtime or pull policy
// and NotFound when the named runtime is not installed (naming what was looked for).
//
// Thread safety: the functions are reentrant; CheckImage and RemoveStaleContainers block their
// caller while the runtime answers (RunTool in worker/process.h, bounded).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "worker/process.h"

namespace hpo::worker {

struct ContainerConfig {
  std::string runtime;  // podman | docker | apptainer; empty = no container runtime
  std::string binary;   // the runtime's executable (absolute path)
  std::string pull = "missing";     // never | missing | always
  std::string network = "host";     // for trials without network isolation
  std::vector<std::string> extra_args;  // added to every run, before the image
  std::chrono::seconds stop_margin{15};  // after the grace period, before the client is killed
  bool turned_off = false;  // --container-runtime none (not merely none found by auto): for messages

  bool enabled() const { return !runtime.empty(); }
};

// `runtime`: auto (the first of podman, docker, apptainer in PATH; none when there is none),
// none, podman, docker, apptainer, or a path to one of them (its file name says which).
// `pull`: never | missing | always.
[[nodiscard]] Result<ContainerConfig> ResolveContainerRuntime(const std::string& runtime, const std::string& pull,
                                                              const std::string& network,
                                                              const std::vector<std::string>& extra_args);

struct ContainerSpec {
  std::string image;
  std::string name;       // ContainerName()
  std::string worker_id;  // label hpo.worker
  std::string trial;      // label hpo.trial
  std::string hostname;   // e.g. algo-1 (podman only: docker refuses it with the host network)
  std::vector<BindMount> mounts;           // the first one is the attempt's root on /opt/ml
  std::map<std::string, std::string> env;  // the trial's whole environment
  std::vector<int> gpus;                   // host GPU indices of the slot
  bool network_none = false;               // enableNetworkIsolation
  // podman and docker: a file (0600) holding EnvFileText(env), given as --env-file, so the
  // trial's Environment (API keys) and hyperparameters are not on the runtime client's command
  // line, which every user of the machine can read in ps. Empty: each variable is an -e argument.
  std::string env_file;
};

// `env` as --env-file text (KEY=VALUE lines), and what cannot be written so (a value with a
// newline), which ContainerRunCommand passes as -e arguments.
std::pair<std::string, std::map<std::string, std::string>> EnvFileText(const std::map<std::string, std::string>& env);

// A name podman and docker accept ([a-zA-Z0-9][a-zA-Z0-9_.-]*), unique per worker and attempt.
std::string ContainerName(const std::string& worker_id, const std::string& trial, uint32_t attempt);

// Who owns a worker's containers: its id and its work directory (`<id>.<8 hex digits>`). Two
// workers of one id on one machine (two `hpo run`s, each with local-1) swept, and collided on
// the names of, each other's containers; one work directory is one worker's.
std::string ContainerOwner(const std::string& worker_id, const std::string& work_dir);

// The command that runs the trial: `<runtime> run ... <image> train`.
std::vector<std::string> ContainerRunCommand(const ContainerConfig& config, const ContainerSpec& spec);

// The command that stops the named container within `grace_s`; empty for apptainer.
std::vector<std::string> ContainerStopCommand(const ContainerConfig& config, const std::string& name, int64_t grace_s);

// The command that removes the named container, running or not; empty for apptainer.
std::vector<std::string> ContainerRemoveCommand(const ContainerConfig& config, const std::string& name);

// Whether a runtime exit code means the runtime failed rather than the program (podman and
// docker: 125; 126 when `last_line`, the run's last output line, is the OCI runtime's error,
// e.g. "Error: runc: runc create failed: ... error setting rlimits").
bool IsRuntimeFailure(const ContainerConfig& config, int exit_code, const std::string& last_line = "");

// With pull policy "never": Ok when the image is present on this host, else FailedPrecondition
// "trainingImage X is not present on this worker and pulls are off (--container-pull never)".
// With another policy: Ok (the runtime pulls what is missing). Unavailable when the runtime
// cannot be asked.
[[nodiscard]] Status CheckImage(const ContainerConfig& config, const std::string& image);

// Whether `image` is in this host's image store (podman `image exists`, docker `image inspect`).
// False for a reference with a transport (`oci-archive:...`): it names a source, not a stored
// image. InvalidArgument when the runtime says the name is no image reference (upper case, an
// ARN: the spec's fault, a ClientError); Unavailable when the runtime cannot be asked or fails
// otherwise. Podman and docker only.
[[nodiscard]] Result<bool> ImagePresent(const ContainerConfig& config, const std::string& image);

// Whether trials' images are pulled before their program starts (PullImage): podman or docker
// with pull policy missing or always.
bool PullsBeforeStart(const ContainerConfig& config);

// Whether `image` names a source with its transport (`oci-archive:/x.tar`, `docker-archive:`,
// `oci:`, `dir:`, `docker://`) rather than an image a store holds under that name.
bool IsImageSource(const std::string& image);

// Pulls `image` (`<runtime> pull IMAGE`) within `timeout` and returns the pulled image's ID (64
// hex digits; "" when the runtime did not print one). A source (IsImageSource) is then run by
// that ID, so an archive is copied once per training job, not again by `run`. Errors name the image and carry the
// runtime's last line: NotFound when the reference can never be pulled (an invalid reference,
// an archive that does not exist here, an unknown repository or tag, a short name no registry
// of this worker resolves: the spec's fault, a ClientError), Unavailable
// otherwise (an unreachable registry, a timeout, a worker without credentials: another worker
// may succeed).
// `*cancel` true stops the pull at once (Unavailable "cancelled": the training job was stopped).
[[nodiscard]] Result<std::string> PullImage(const ContainerConfig& config, const std::string& image,
                                           std::chrono::seconds timeout, const std::atomic<bool>* cancel = nullptr);

// The image ID a successful pull printed: the last line of 64 hex digits anywhere in the output
// (podman prints it on stdout and its progress on stderr, which share the pipe, so a progress
// line written late can follow it; of two pulls of one archive at once, the second once reported
// no ID under load, and its training job ran from the archive again: the likely cause, not
// reproduced); "" when none (docker prints the reference).
std::string ImageIdInPullOutput(const std::string& output);

// Removes containers labelled hpo.worker=<worker_id> left by an earlier process of this worker
// (killed before its trials ended). Returns how many were removed. No-op for apptainer.
Result<int> RemoveStaleContainers(const ContainerConfig& config, const std::string& worker_id);

}  // namespace hpo::worker
