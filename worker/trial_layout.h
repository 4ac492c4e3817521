// worker/trial_layout.h: the SageMaker training-container contract for one trial attempt.
//
// What it is: LayOutTrial() creates, under the attempt's root directory, the tree SageMaker
// mounts at /opt/ml (reference/sagemaker-semantics.md §4):
//
//   <root>/input/config/hyperparameters.json   flat object, every value a string
//   <root>/input/config/inputdataconfig.json   {"<channel>": {"ContentType" (only when set),
//                                                "TrainingInputMode", "S3DistributionType",
//                                                "RecordWrapperType", "CompressionType" (only
//                                                when Gzip)}, ...}
//   <root>/input/config/resourceconfig.json    {"current_host", "hosts" (sorted),
//                                                "network_interface_name": "eth0",
//                                                "current_instance_type", "current_group_name",
//                                                "current_instance_group", "instance_groups":
//                                                [{"instance_group_name", "instance_type",
//                                                  "hosts" (sorted)}]}
//   <root>/input/config/checkpointconfig.json  {"LocalPath", "S3Uri"}: only with CheckpointConfig
//                                                (checkpoint_uri set); the keys of the API's
//                                                CheckpointConfig, as smdebug's state_store reads
//                                                "LocalPath" from this file
//   <root>/input/data/<channel>/   <root>/model/   <root>/output/data/
//   <root>/output/intermediate/    <root>/checkpoints/
//
// The JSON files are compact with sorted keys. Hosts are sorted lexicographically, as the
// training toolkit documents it ("algo-10" sorts before "algo-2"); every host of a gang gets the
// same order.
//
// TrainingEnvironment() gives the variables SageMaker and its training toolkit set: the
// definition's Environment, then (winning over it) TRAINING_JOB_NAME, TRAINING_JOB_ARN, the SM_*
// set and CUDA_VISIBLE_DEVICES. Non-string values are JSON as the toolkit writes them: compact,
// sorted keys, non-ASCII escaped (`{"a":1,"b":"x"}`). Hyperparameters are read as the toolkit
// reads them, each value through json.loads where it parses: SM_HPS holds `{"lr":0.1,
// "opt":"adam","layers":[64,32]}`, SM_HP_LR is `0.1`, SM_HP_LAYERS `[64,32]`, and a value
// written `1e-3` reads `0.001` (hyperparameters.json keeps every value as the text given).
// SM_HPS and SM_HP_<NAME> leave out `sagemaker_*` and `_tuning_objective_metric`, as the toolkit
// does; SM_HP_<NAME> upper-cases the name (names containing '=' get no SM_HP_ variable).
//
// Paths. The SM_* paths name the tree as the program sees it: `visible_root` when set (/opt/ml
// when the worker bind-mounts the root there in a private mount namespace, or a container runtime
// mounts it as a volume), else the root itself (SM_MODEL_DIR=<root>/model, ...), so a program that
// follows the variables works without containers or privileges; only one that hard-codes /opt/ml
// then needs the mount.
//
// What it is not: it stages no data (input/data/<channel> is created empty; worker/data_channels.h
// fills it, or worker/pipe_channel.h feeds its Pipe-mode FIFOs input/data/<channel>_<epoch>), syncs no checkpoints, packs no artifacts (worker/artifacts.h), and knows nothing of coordinator types: TrialLayoutSpec is a
// plain struct that the agent fills in.
//
// Thread safety: all functions are reentrant; LayOutTrial calls for different roots may run
// concurrently.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace hpo::worker {

struct LayoutChannel {
  std::string name;            // [A-Za-z0-9._-]+, unique in the trial; also a directory name
  std::string content_type;    // empty = no "ContentType" key
  std::string input_mode;      // File | Pipe | FastFile; empty = the trial's training_input_mode
  std::string distribution;    // FullyReplicated | ShardedByS3Key; empty = FullyReplicated
  std::string record_wrapper;  // None | RecordIO; empty = None
  std::string compression;     // None | Gzip; empty = None (written only when Gzip)
};

struct LayoutInstanceGroup {
  std::string name;                // instance_group_name
  std::string instance_type;
  std::vector<std::string> hosts;  // written sorted
};

struct TrialLayoutSpec {
  std::string job_name;  // the training job name (TRAINING_JOB_NAME)
  std::string job_arn;   // TRAINING_JOB_ARN
  std::string root;      // the attempt's directory, the future /opt/ml; must not be empty
  std::string visible_root;  // where the program sees `root` ("/opt/ml"); empty = root itself
  std::map<std::string, std::string> hyperparameters;  // as the job gives them, reserved ones included
  std::vector<LayoutChannel> channels;
  std::string current_host = "algo-1";
  std::vector<std::string> hosts = {"algo-1"};  // every host of the trial, this one included
  std::string instance_type;                    // current_instance_type
  // resourceconfig.json's network_interface_name and SM_NETWORK_INTERFACE_NAME: the interface
  // that carries this host's address (launchers pass it to NCCL_SOCKET_IFNAME and MPI).
  std::string network_interface = "eth0";
  // Empty = one group named current_group (or "homogeneousCluster") of instance_type with all
  // hosts, which is what SageMaker writes for a job without instance groups.
  std::vector<LayoutInstanceGroup> instance_groups;
  // Empty = the group whose hosts include current_host, else "homogeneousCluster".
  std::string current_group;
  int num_cpus = 1;                                // SM_NUM_CPUS
  std::vector<int> gpus;                           // GPU indices of this attempt's slot
  std::map<std::string, std::string> environment;  // the definition's Environment
  std::string training_input_mode = "File";        // AlgorithmSpecification.TrainingInputMode
  // CheckpointConfig: the URI its checkpoints sync with (hpo's per-training-job prefix of
  // CheckpointConfig.S3Uri); empty = no CheckpointConfig, no checkpointconfig.json.
  std::string checkpoint_uri;
  // Where the program sees its checkpoint directory (a path under visible_root, or
  // CheckpointConfig.LocalPath); empty = <visible root>/checkpoints.
  std::string checkpoint_local_path;
  // MakeTrialTree(root) made the tree already (ahead of time, no content yet): only the channel
  // directories are created, and the files are written in place.
  bool tree_made = false;
};

// Creates the directories and writes the JSON files (each atomically, by
// WriteFileAtomically, without fsync: a worker that crashes ends the attempt, and the next one is
// laid out afresh; in a tree_made tree, which nothing reads yet, new files are simply written).
// Existing files are replaced; existing directories and their content are
// kept (the caller empties the root between attempts if it wants a fresh one; checkpoints copied
// in before the call survive it).
// Errors: InvalidArgument for an empty root, or a channel name that is empty, duplicated, "." or
// "..", or has characters other than [A-Za-z0-9._-] (checked before anything is created);
// IoError naming the path that could not be created or written.
[[nodiscard]] Status LayOutTrial(const TrialLayoutSpec& spec);

// Creates the directory tree of an attempt's root without channels (root, input/config,
// input/data, model, output/data, output/intermediate, checkpoints; existing ones are kept), e.g.
// ahead of time, to be renamed into place and completed by LayOutTrial with tree_made set. With
// config_files, the three files of input/config are created too, empty (they must not exist), so
// that LayOutTrial then only fills them.
// Errors: InvalidArgument for an empty root; IoError naming the directory or file that cannot be
// made.
[[nodiscard]] Status MakeTrialTree(const std::string& root, bool config_files = false);

// The environment of the training program, as described above. It has no PATH, HOME or LANG:
// the caller adds what the program needs from the worker's side. Pure: touches no file.
std::map<std::string, std::string> TrainingEnvironment(const TrialLayoutSpec& spec);
// Whether a variable of that name is one hpo sets for every training job (TrainingEnvironment's,
// SM_HP_* and SM_CHANNEL_* included, CUDA_VISIBLE_DEVICES (the training job's GPUs), and the
// worker's HPO_ATTEMPT and HPO_WORKER_DIR): a spec's
// Environment entry of such a name is not what the program gets.
bool SetForEveryTrainingJob(const std::string& name);

// The FailureReason of an algorithm error: "AlgorithmError: " (unless the text starts with it)
// and the text of <root>/output/failure without trailing whitespace, as SageMaker reports it, cut
// to 1024 characters (UTF-8 code points; bytes that are not valid UTF-8 count as one character
// each and become U+FFFD). Empty when there is no such file, or an empty one.
// Errors: IoError when the file exists but cannot be read (a directory, no permission), or is not
// a regular file: a FIFO or device is not opened for reading (it never blocks), and a symbolic
// link, of the file or of output/, is not followed.
[[nodiscard]] Result<std::string> ReadFailureReason(const std::string& root);

}  // namespace hpo::worker
