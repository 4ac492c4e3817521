// coordinator/cloudwatch_logs.h: the training jobs' output, read as CloudWatch Logs serves
// SageMaker's.
//
// SageMaker writes a training job's output to CloudWatch Logs, log group
// `/aws/sagemaker/TrainingJobs`, one stream per host and container start named
// `<training job>/algo-<N>-<epoch seconds>`; the SageMaker Python SDK (`Session.logs_for_job`,
// `Estimator.logs()`, `fit(logs=...)`), `aws logs get-log-events` and `aws logs tail` read it
// there. The coordinator answers those reads from the output lines it keeps of every attempt
// (CoordinatorCore::Logs: the first and the last lines of a long one), on the endpoint of its
// SageMaker API: AWS JSON 1.1, `POST /` with `X-Amz-Target: Logs_20140328.<Action>`, signatures
// (where required) scoped to the service `logs`. Clients reach it with
// AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=URL (boto3 and the aws CLI) or `--endpoint-url URL`.
//
// Actions (a request member of the wrong JSON type is SerializationException; a value out of
// range, an unknown group or stream, a bad token: InvalidParameterException or
// ResourceNotFoundException, with CloudWatch's messages):
//   DescribeLogGroups   the one group, when logGroupNamePrefix leads to it.
//   DescribeLogStreams  logGroupName, logStreamNamePrefix, orderBy LogStreamName (default; the
//                       streams of training jobs in name order, paged by nextToken) or
//                       LastEventTime (not with a prefix, as CloudWatch), descending, limit 1-50.
//   GetLogEvents        logGroupName, logStreamName, startTime/endTime (ms), startFromHead
//                       (default false: the last page), limit 1-10000, nextToken (the f/... and
//                       b/... tokens it answered). At a stream's end nextForwardToken is the one
//                       sent, the readers' signal to stop.
//   FilterLogEvents     logGroupName, logStreamNames (up to 100) or logStreamNamePrefix,
//                       startTime/endTime (endTime inclusive here, as CloudWatch), filterPattern,
//                       limit 1-10000, nextToken: events in time
//                       order across the streams, each with its stream's name and an eventId.
//                       filterPattern is any of CloudWatch's kinds (coordinator/log_filter.h):
//                       terms (ERROR "two words" -skip ?either), %regex%, JSON ({ $.loss < 0.5 })
//                       and space-delimited ([epoch, ..., loss < 0.5]); one it cannot read is
//                       InvalidParameterException naming what is wrong.
//
// Streams and times. A stream is one host's output of one attempt: a retried or interrupted
// training job starts a new one, as a new container does on SageMaker; N is the host (1 for a
// single-host training job), the seconds those of the stream's first line kept (one more where an
// earlier attempt's stream of that host already has the name: names are unique). An event's
// timestamp (and ingestionTime) is when the coordinator received the line: workers send output
// every 50 ms, so within that of when it was printed, but later for lines held back while a
// worker reconnected. Lines stored by a build that kept no times carry their training job's start.
//
// Threads: as HandleSageMakerAction; each call holds the core's lock for one bounded read.
#pragma once

#include <string>

#include "coordinator/dispatcher.h"
#include "coordinator/http_api.h"

namespace hpo::coordinator {

// The log group SageMaker's training jobs write to, and the X-Amz-Target prefix of CloudWatch
// Logs' actions.
inline constexpr const char* kTrainingJobLogGroup = "/aws/sagemaker/TrainingJobs";
inline constexpr const char* kLogsTargetPrefix = "Logs_20140328.";

// Handles one CloudWatch Logs request: `action` from X-Amz-Target (without "Logs_20140328."),
// `body` the request JSON.
ApiResponse HandleLogsAction(Dispatcher& d, const std::string& action, const std::string& body);

}  // namespace hpo::coordinator
