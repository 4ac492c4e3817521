// coordinator/cloudwatch_metrics.h: the training jobs' metrics, read as CloudWatch serves
// SageMaker's.
//
// SageMaker publishes every metric a training job's MetricDefinitions find to CloudWatch,
// namespace `/aws/sagemaker/TrainingJobs`, dimension `TrainingJobName`; the SageMaker Python SDK's
// `TrainingJobAnalytics(name, metric_names).dataframe()` (a training job's learning curves) and
// `aws cloudwatch get-metric-statistics` read them there. The coordinator answers those reads
// from the metric values it stores (each with the worker's time of the line that carried it), on
// the endpoint of its SageMaker API, in the protocol botocore speaks to CloudWatch: AWS JSON 1.0,
// `POST /` with `X-Amz-Target: GraniteServiceVersion20100801.<Action>`; signatures (where
// required) scoped to the service `monitoring`. Clients reach it with
// AWS_ENDPOINT_URL_CLOUDWATCH=URL. Older botocore (Debian 12's 1.29) speaks CloudWatch's query
// protocol (form-encoded, XML answers), which is not served: its requests get an error that says
// so.
//
// Actions:
//   GetMetricStatistics  Namespace, MetricName, Dimensions (TrainingJobName), StartTime, EndTime,
//                        Period (seconds, >= 1), Statistics (SampleCount, Average, Sum, Minimum,
//                        Maximum): one datapoint per period holding values, the periods counted
//                        from StartTime; at most 1,440 periods, as CloudWatch. A value is dated
//                        when the worker read its line, and no earlier than the training job's
//                        TrainingStartTime (which is when the coordinator heard the program
//                        start, milliseconds after it did). ExtendedStatistics
//                        (percentiles) are refused. Every attempt's values count (a spot-interrupted
//                        training job's too, as SageMaker's are all published).
//   ListMetrics          Namespace, MetricName, Dimensions (TrainingJobName), NextToken: the
//                        metric names each training job has reported, 500 to a page.
// Another namespace, an unknown training job or metric: no datapoints (as CloudWatch, which has
// none to give), not an error.
//
// Threads: as HandleSageMakerAction; each call holds the core's lock for one bounded read.
#pragma once

#include <cstdint>
#include <string>

#include "coordinator/dispatcher.h"
#include "coordinator/http_api.h"

namespace hpo::coordinator {

// The X-Amz-Target prefix of CloudWatch's actions.
inline constexpr const char* kCloudWatchTargetPrefix = "GraniteServiceVersion20100801.";

// Handles one CloudWatch request: `action` from X-Amz-Target (without the prefix), `body` the
// request JSON.
ApiResponse HandleCloudWatchAction(Dispatcher& d, const std::string& action, const std::string& body);

}  // namespace hpo::coordinator
