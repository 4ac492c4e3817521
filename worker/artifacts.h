// worker/artifacts.h: packing and uploading a trial's model and output data.
//
// What it is: after the training program exits, SageMaker packs /opt/ml/model into
// `<S3OutputPath>/<training job name>/output/model.tar.gz` and /opt/ml/output/data into
// `.../output/output.tar.gz` (reference/sagemaker-semantics.md §4). UploadArtifacts does the same
// for an attempt's root, to any common/object_store.h location: an s3:// output path (multipart
// for large files) or a local directory / file:// URI (a shared filesystem, the common on-prem
// case: archives are packed in place there, without a scratch copy).
//
// Archives: POSIX ustar (GNU long-name records for paths over 100 bytes), members named relative
// to the packed directory ("model.pth", "sub/x.bin"), regular files, directories and symlinks,
// modes and mtimes kept, owner 0/0, gzip-compressed. A file with holes (truncate -s 1T, a
// preallocated memory map) goes in GNU tar's PAX sparse format 1.0, its data extents only, which
// GNU tar, bsdtar and Python's tarfile restore with its holes. An empty directory gives a valid empty
// archive, as SageMaker uploads one too.
//
// OutputDataConfig.CompressionType NONE ("Select None to output an uncompressed model,
// recommended for large model outputs"; the SageMaker guide's "Uncompressed model output" uploads
// "model and data outputs ... as uncompressed files"): no archives; every regular file of
// /opt/ml/model becomes the object `<S3OutputPath>/<job>/output/model/<relative path>` and every
// one of /opt/ml/output/data `.../output/data/<relative path>` (symlinks and special files are
// left out), and objects already under those prefixes that the directory no longer has (an
// earlier attempt's) are deleted unless `replace` is off (a multi-host job's hosts merge theirs
// there). The model's URI is then the prefix `.../output/model/`, which
// is what DescribeTrainingJob's S3ModelArtifacts names and what the SageMaker SDK deploys from
// with S3DataType S3Prefix and CompressionType None.
//
// /opt/ml/output/intermediate is not packed: the agent keeps it in step with IntermediateUri()
// while the program runs and after it ends (worker/checkpoints.h's CheckpointSync, local deletes
// not mirrored), as SageMaker uploads it during training.
//
// Errors: IoError for local files (naming the path); what S3Client returns for uploads; a local
// archive is packed under a temporary name beside its destination and renamed, so a reader never
// sees half a file.
//
// Thread safety: the functions are reentrant.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"
#include "common/object_store.h"

namespace hpo::worker {

// Writes `dir` as a tar archive to `out_path` (gzip-compressed when `gzip`): directories, regular
// files, symbolic links as links (never followed), a file with several names in the tree once and
// its other names as hard-link entries; sockets, FIFOs and devices are left out.
[[nodiscard]] Status WriteTar(const std::string& dir, const std::string& out_path, bool gzip);

// A tar header's numeric field of `width` bytes: width-1 octal digits and a NUL, or GNU's
// base-256 form (0x80, then the value big-endian) for a value they cannot hold, such as the size
// of a file of 8 GiB or more. FitsOctal says which.
bool FitsOctal(std::size_t width, uint64_t value);
void TarNumber(char* field, std::size_t width, uint64_t value);

struct ArtifactSpec {
  std::string root;         // the attempt's root: model/ and output/data/ are packed from it
  std::string output_path;  // S3OutputPath: s3://bucket/prefix, file:///dir or /dir
  std::string job_name;     // the training job name
  bool compress = true;     // OutputDataConfig.CompressionType != NONE (see above)
  std::string scratch_dir;  // where the archives are built before an s3:// upload; must exist
                            // (a local output path gets them packed in place)
  // CompressionType NONE: objects under output/model/ and output/data/ that the directories do
  // not have are deleted (an earlier attempt's). Off for the hosts of a multi-host job, whose
  // files are merged there, as SageMaker aggregates every host's /opt/ml/model.
  bool replace = true;
  // Compressed: a multi-host job's hosts other than algo-1 (false here) never write the archives;
  // see `hosts`. (Before the merge, their empty archives, uploaded to the same key, replaced
  // algo-1's model whenever one of them finished last.)
  bool primary = true;
  // A multi-host attempt (2 or more `hosts`, "algo-1".."algo-N" in order; `host` is this one,
  // `attempt` the attempt's number). Its hosts meet under PartsPrefix()
  // (<job>/output/.hpo-hosts/attempt-<A>/):
  //   - compressed, its archives hold every host's files, as SageMaker aggregates every host's
  //     /opt/ml/model into one model.tar.gz: a host other than algo-1 puts the regular files of
  //     its model/ and output/data/ under <PartsPrefix()><host>/{model,data}/<relative path>;
  //     algo-1 copies into its own directories every file of the hosts whose hand-over was
  //     complete when it began (a path several hosts wrote stays algo-1's, else the lowest
  //     host's, algo-2 before algo-10), then packs and uploads the archives;
  //   - CompressionType NONE, every host writes its files straight under output/model/ and
  //     output/data/ (no transfer twice), and a host other than algo-1 lists the keys it wrote in
  //     <PartsPrefix()><host>.keys; algo-1, writing last, then deletes what no host of this attempt
  //     wrote there (an earlier attempt's files), when every list is there;
  //   - every host other than algo-1 then puts the empty object <PartsPrefix()><host>.done (also
  //     with nothing to hand over) and algo-1, once uploaded, <PartsPrefix()>packed. Each then
  //     looks at the others' markers: whoever finds them all removes the attempt's folder, so it
  //     goes also when a host hands over after algo-1 has packed (algo-1 failed first); algo-1
  //     also removes earlier attempts' folders (never a later attempt's: a retry may be handing
  //     over already). A host lost in the middle leaves the folder until a retry's algo-1, or algo-1
  //   removes it when the coordinator says every other host has ended (`peers_ended`); algo-1's
  //   host lost with no retry to follow, another host's worker removes it when the coordinator
  //   says so (DiscardHandOverFolder).
  // Algo-1 packs once the others have ended (the agent's concern: it waits for the coordinator's
  // GangPeersEnded when algo-1's program completed; after the coordinator stopped the gang, for
  // that or every other host's .done, HandedOver(); not at all when algo-1 failed or its own
  // worker stopped it).
  // Only the other hosts' regular files are carried (their links and empty directories are not).
  // Nothing is written through a link: a model/ (or output/, output/data/) that the program
  // replaced with one gets nothing merged, and `merged` says so. A host whose hand-over is
  // missing (ended after algo-1, or lost first, or a local output path that the workers do not
  // share) is named in `merged`.
  // Algo-1: the coordinator said every other host has ended (GangPeersEnded) before the upload
  // began. Each host hands over before it reports its end, so what they will ever hand over is
  // in place: one that has not (its upload failed, its worker was lost or never started it; a
  // lost worker that comes back is told the attempt was revoked and uploads nothing) never
  // will, and algo-1 removes the attempt's folder once packed. (Without it, a host that never
  // ran left the folder in the output for good when no retry followed: the soak found one.)
  bool peers_ended = false;
  // Initialised (empty) so that a single-host spec written as an aggregate may leave them out.
  std::string host{};
  std::vector<std::string> hosts{};
  uint32_t attempt = 0;
  bool Gang() const { return hosts.size() > 1; }
  bool Merges() const { return compress && Gang(); }
};

// The worker's side of proto::wire::DiscardHandOver: a multi-host training job whose algo-1 was
// lost, with no retry to follow, will never be packed, so what its other hosts handed over is
// removed: <job_name>/output/.hpo-hosts/ under output_path (s3:// through `s3`, else a local
// path), every attempt up to `attempt` (never a later one's), and the folder when it is then
// empty. Removing what is already gone is no error; one that cannot be removed is an IoError.
[[nodiscard]] Status DiscardHandOverFolder(const std::string& output_path, const std::string& job_name, uint32_t attempt,
                                           const std::function<Result<const S3Client*>()>& s3);

// Where a multi-host attempt's hosts other than algo-1 put their files for algo-1 to merge,
// relative to the output location: "<job>/output/.hpo-hosts/attempt-<A>/".
std::string PartsPrefix(const ArtifactSpec& spec);

struct UploadedArtifacts {
  std::string model;        // e.g. s3://bucket/prefix/<job>/output/model.tar.gz (NONE: .../output/model/)
  std::string output_data;  // e.g. s3://bucket/prefix/<job>/output/output.tar.gz (NONE: .../output/data/)
  // For the log, "" when nothing: algo-1 of a multi-host attempt, what it took from the other
  // hosts and removed ("model: 2 files from algo-2, 1 from algo-3; 1 path algo-1 also wrote kept
  // as algo-1's"); the links of files uploaded one by one that were left out ("model: left out 1
  // link(s): weights -> /data/w.bin (absolute)").
  std::string note;
  // Another host of a multi-host attempt: its files went to the hand-over folder, for algo-1 to
  // pack into `model` and `output_data` (if it has not packed them yet); nothing was put there.
  bool handed_over = false;
};

// Where /opt/ml/output/intermediate goes: <S3OutputPath>/<job>/output/intermediate (no trailing
// '/'), where SageMaker and the training toolkit's own sync put it.
std::string IntermediateUri(const ArtifactSpec& spec);

// Algo-1 of a multi-host attempt (ArtifactSpec::Merges): whether every other host has finished
// handing its files over (its .done object is there). Errors reading the store are false.
bool HandedOver(const ArtifactSpec& spec, const std::function<Result<const S3Client*>()>& s3);

// Creates the local directory that UploadArtifacts(spec) writes the archives into (<output
// path>/<job>/output/; nothing for an s3:// output path), so that the upload at the end of the
// attempt finds it: the agent calls it while the program runs. Errors are left for
// UploadArtifacts to report.
void PrepareArtifactDirectory(const ArtifactSpec& spec);

// Packs and uploads both archives (CompressionType NONE: both directories' files). `s3` is
// called only for an s3:// output path.
[[nodiscard]] Result<UploadedArtifacts> UploadArtifacts(const ArtifactSpec& spec,
                                                        const std::function<Result<const S3Client*>()>& s3);

// Algo-1 of a multi-host attempt that the coordinator no longer runs (the training job ended
// while this worker was out of touch, or the attempt was counted lost): nothing is uploaded, but
// its marker says it is done, so that the attempt's hand-over folder goes, now if every other
// host has handed over, else when the last of them does. Without it the folder stayed in the
// user's output when no retry followed (a retry's algo-1 removes earlier attempts' folders).
// Best effort: a failure is only returned for the log.
Status AbandonHandOver(const ArtifactSpec& spec, const std::function<Result<const S3Client*>()>& s3);

}  // namespace hpo::worker
