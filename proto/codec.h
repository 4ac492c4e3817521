// proto/codec.h: read and write the tuning-job model in both of its spellings.
//
// Spellings:
// - kCrd: the Kubernetes resource of the ACK sagemaker-controller (camelCase, with the CRD's own
//   spellings `type_`, `s3URI`, `roleARN`, `kmsKeyID`, `volumeKMSKeyID`, `fileSystemID`,
//   `securityGroupIDs`, `trainingJobARN`), in YAML or JSON. Timestamps are RFC 3339 text.
// - kApi: the SageMaker JSON API (PascalCase): the CreateHyperParameterTuningJob request, the
//   DescribeHyperParameterTuningJob and ListTrainingJobsForHyperParameterTuningJob responses.
//   Timestamps are epoch seconds.
//
// Guarantees:
// - Lossless: a spec read in one spelling, written in the other and read back is equal (==) to
//   the original. Strings that look like numbers (range bounds) keep their exact text.
// - Decoding reports every problem at once, each with its field path in the input's spelling
//   (`spec.hyperParameterTuningJobConfig.resourceLimits.maxParallelTrainingJobs` or
//   `HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs`): unknown fields
//   (with the right name when the other spelling or a near miss was used), wrong types, bad
//   timestamps. Decoding checks shapes only; proto/validate.h checks SageMaker's rules.
// - No function here throws; no function touches files, sockets or processes.
// - YAML scalars are untyped text until the model says what a field is: `minValue: 0.10` reads
//   as the string "0.10", `maxParallelTrainingJobs: "3"` as the integer 3. JSON is typed
//   strictly: a number where the model wants a string is an error that says to quote it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "proto/tuning_job.h"

namespace hpo::proto {

enum class Spelling { kCrd, kApi };

// One problem in a document, e.g. path "spec.tags[2].key", message "must be 1-128 characters".
struct FieldError {
  std::string path;
  std::string message;
  // The value is one SageMaker's API accepts but over a quota of this coordinator (ValidationLimits:
  // parallel training jobs, training jobs per tuning job): SageMaker answers such a request with
  // ResourceLimitExceeded, not ValidationException.
  bool quota = false;
  // The value is of a JSON type the field cannot hold (a string for an integer, an object for a
  // list), in a document whose scalars are typed (JSON, not YAML): SageMaker's deserializer
  // refuses such a request with SerializationException before any rule is checked.
  bool type = false;
  // The line of `path` in a YAML document (AddYamlLines); 0: none known.
  int line = 0;
  // "line 12: spec.x: message"; WithoutLine() leaves the line out (for a caller that writes it
  // as FILE:12:, as compilers do).
  std::string WithoutLine() const { return path.empty() ? message : path + ": " + message; }
  std::string ToString() const { return (line > 0 ? "line " + std::to_string(line) + ": " : "") + WithoutLine(); }
  bool operator==(const FieldError&) const = default;
};
using FieldErrors = std::vector<FieldError>;

// All errors as "<path>: <message>" lines joined with '\n'.
std::string JoinErrors(const FieldErrors& errors);

// What SageMaker's DescribeTrainingJob answers for a name it does not know: ValidationException
// with a message that begins with this (its API model lists ResourceNotFound, which the tuning-job
// actions do answer; code written against SageMaker handles the ValidationException).
inline constexpr std::string_view kRequestedResourceNotFound = "Requested resource not found.";
// Whether an API error (its __type and message) says the named resource does not exist: either
// ResourceNotFound or the ValidationException above. Clients read both as "not found".
bool IsNotFoundError(std::string_view type, std::string_view message);

// A parsed text document: the JSON tree, and whether it came from YAML (untyped scalars).
struct TextTree {
  nlohmann::ordered_json tree;
  bool from_yaml = false;
  // YAML only: the scalars a YAML 1.1 reader such as kubectl types otherwise than hpo's decoders
  // may read them, by path (keys joined by '.', list items as [i]): a plain
  // one it reads as "boolean", "integer" or "number" (`epochs: 10`), and a quoted one that would
  // be such if plain, which it sends as a "string" (`maxNumberOfTrainingJobs: "10"`). The
  // decoders read both by the field's type; the CRD decoder notes where the API server would
  // refuse what kubectl sends (ParsedSpec::kubectl_notes). A plain map key it reads as a boolean
  // (`on:`) is here as PATH.KEY#key -> "boolean": kubectl sends it as "true" or "false".
  std::map<std::string, std::string> yaml_kinds;
  // YAML only: the line (1-based) of each node, by the same paths; a mapping's member at its key's
  // line. Errors about a field name its line (AddYamlLines).
  std::map<std::string, int> yaml_lines;
};

// Limits on one parsed document, enforced by ParseText (and so by ParseSpec and every decoder's
// caller: hpo's CLI, the coordinator's HTTP API, the coordinator's stored specs). A real tuning
// job spec is a few KB and a few hundred nodes; one at SageMaker's maxima (10 definitions of 100
// hyperparameters with 2,500-character values) is about 3 MB and 20,000 nodes. YAML aliases let a
// short text name a far larger tree, and parsing, decoding, validating and re-encoding each copy
// that tree, so the tree after alias expansion is bounded too; together these keep what one
// document can make hpo allocate to tens of MB.
inline constexpr size_t kMaxDocumentBytes = 4u << 20;      // the text itself
inline constexpr size_t kMaxDocumentNodes = 50'000;        // values, after YAML aliases are expanded
inline constexpr size_t kMaxDocumentTextBytes = 4u << 20;  // keys and scalars, after expansion

// Parses YAML or JSON text (JSON when the first non-blank character is '{' or '['). Errors name
// the line and column, or the limit above that the document exceeds. Exactly one YAML document is
// allowed.
Result<TextTree> ParseText(std::string_view text);

// Parses JSON text only (an AWS JSON 1.1 request body, say), with ParseText's limits: nesting
// deeper than 64 levels, too many nodes or bytes, and a repeated key are refused as
// InvalidArgument before anything reads the tree (a deep tree would overflow the stack of
// whatever walks it recursively, dump() included). Syntax errors name the line and column.
Result<nlohmann::ordered_json> ParseJson(std::string_view text);

// A spec read from any accepted input, with the spelling it came in.
struct ParsedSpec {
  Spelling spelling = Spelling::kCrd;
  // A CRD document in YAML: the values hpo reads by their field's type but that `kubectl apply`
  // would send as another JSON type than the CRD's schema has there, so that the API server
  // refuses the resource (`num_round: 10` in staticHyperParameters, a string field; a quoted
  // "10" in an integer field). Each says how to write it. hpo runs the spec either way.
  FieldErrors kubectl_notes;
  // A YAML document's TextTree::yaml_lines, by the paths errors name (a bare spec's under
  // "spec."): AddYamlLines(yaml_lines, Validate(...)) places SageMaker's rules' errors too.
  std::map<std::string, int> yaml_lines;
  // For CRD input the whole document. For API input, spec is the request and metadata.name is
  // the job name.
  TuningJobDocument document;
};

// Reads a tuning-job spec from YAML/JSON text, detecting the spelling from the content:
// - a CRD document (apiVersion/kind/metadata/spec[/status]),
// - a bare CRD spec (camelCase keys such as hyperParameterTuningJobName at the top),
// - a SageMaker CreateHyperParameterTuningJob request (PascalCase keys).
// On failure returns InvalidArgument with all errors joined, and fills *errors if given.
// `partial` (if given) gets what could be decoded either way: a field with an error is left at
// its default, so `hpo validate` can apply SageMaker's rules to the rest and report every
// problem at once. It is not a spec to run.
Result<ParsedSpec> ParseSpec(std::string_view text, FieldErrors* errors = nullptr, ParsedSpec* partial = nullptr);

// Sets each error's line to its path's in `lines` (TextTree::yaml_lines), or to its nearest
// enclosing field's: an error in a YAML spec names where to look (a crd pass: only parse errors
// had lines). Errors with a line already, or without a path, are left as they are.
void AddYamlLines(const std::map<std::string, int>& lines, FieldErrors& errors);

// What a tuning job keeps of its Kubernetes resource's `metadata`, to show it again: name,
// namespace, and the labels and annotations whose values are text (Kubernetes refuses others).
// What the cluster writes (uid, resourceVersion, creationTimestamp, managedFields, ...) is left
// out: a resource printed with it could not be applied again. An object, {} for none.
nlohmann::ordered_json KeptKubernetesMetadata(const nlohmann::ordered_json& metadata);

// Decoders from a parsed tree. `from_yaml` selects untyped scalars.
Result<TuningJobDocument> DecodeCrdDocument(const TextTree& in, FieldErrors* errors = nullptr);
Result<TuningJobSpec> DecodeCreateRequest(const TextTree& in, FieldErrors* errors = nullptr);
Result<DescribeTuningJobResponse> DecodeDescribeResponse(const TextTree& in, FieldErrors* errors = nullptr);
Result<ListTrainingJobsResponse> DecodeListTrainingJobsResponse(const TextTree& in, FieldErrors* errors = nullptr);

// Encoders. Absent optionals and empty lists/maps are left out.
nlohmann::ordered_json EncodeCrdDocument(const TuningJobDocument& doc);
nlohmann::ordered_json EncodeCreateRequest(const TuningJobSpec& spec);
nlohmann::ordered_json EncodeDescribeResponse(const DescribeTuningJobResponse& resp);
nlohmann::ordered_json EncodeListTrainingJobsResponse(const ListTrainingJobsResponse& resp);
// One training-job summary in the given spelling (a row of `hpo trials -o json`).
nlohmann::ordered_json EncodeTrainingJobSummary(const TrainingJobSummary& s, Spelling spelling);

// Writes a JSON tree as block-style YAML. Strings that YAML would read as another type
// ("0.1", "true", "null", "") are double-quoted so kubectl reads them as strings.
std::string ToYaml(const nlohmann::ordered_json& tree);

// The CRD spelling of a SageMaker API member name ("RoleArn" -> "roleARN", "Strategy" ->
// "strategy"): used for field paths, so validation speaks the user's spelling.
std::string CrdName(std::string_view api_name);

// Renders a path given as API member names and indices ("HyperParameterTuningJobConfig",
// "ParameterRanges", "[0]") in a spelling; kCrd prefixes "spec.".
class FieldPath {
 public:
  explicit FieldPath(Spelling spelling);
  FieldPath Child(std::string_view api_name) const;
  FieldPath Index(size_t i) const;
  // A map key ("StaticHyperParameters" then Key("epochs")) renders as `staticHyperParameters.epochs`.
  FieldPath Key(std::string_view key) const;
  const std::string& str() const { return path_; }
  Spelling spelling() const { return spelling_; }

 private:
  FieldPath(Spelling s, std::string p) : spelling_(s), path_(std::move(p)) {}
  Spelling spelling_;
  std::string path_;
};

// RFC 3339 text <-> Timestamp (UTC; fractional seconds to milliseconds).
std::string FormatRfc3339(const Timestamp& t);
Result<Timestamp> ParseRfc3339(std::string_view text);

}  // namespace hpo::proto
