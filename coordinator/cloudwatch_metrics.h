// coordinator/cloudwatch_metrics.h: the training jobs' metrics, read as CloudWatch serves
// SageMaker's.
//
// SageMaker publishes every metric a training job's MetricDefinitions find to CloudWatch,
// namespace `/aws/sagemaker/TrainingJobs`, dimension `TrainingJobName`; the SageMaker Python SDK's
// `TrainingJobAnalytics(name, metric_names).dataframe()` (a training job's learning curves) and
// `aws cloudwatch get-metric-statistics` read them there. The coordinator answers those reads
// from the metric values it stores (each with the worker's time of the line that carried it), on
// the endpoint of its SageMaker API, in both protocols CloudWatch's clients speak
// (coordinator/aws_request.h): AWS JSON 1.0, `POST /` with
// `X-Amz-Target: GraniteServiceVersion20100801.<Action>` (current botocore), and the query
// protocol, a form-encoded `POST /` with `Action=<Action>&Version=2010-08-01` answered in XML
// (Debian 12's python3-boto3 and aws CLI, and SDKs of that age). Signatures (where
// required) are scoped to the service `monitoring`. Clients reach it with
// AWS_ENDPOINT_URL_CLOUDWATCH=URL (or `--endpoint-url`, or a client's endpoint_url).
//
// Actions:
//   GetMetricStatistics  Namespace, MetricName, Dimensions (TrainingJobName), StartTime, EndTime,
//                        Period (seconds: 1, 5, 10, 20, 30 or a multiple of 60, up to 1e9), Statistics (SampleCount, Average, Sum, Minimum,
//                        Maximum): one datapoint per period holding values, the periods counted
//                        from StartTime rounded down as CloudWatch rounds it (to the period's
//                        division of a minute for periods under 60 s, else to the minute, or
//                        5 minutes past 15 days, the hour past 63); at most 1,440 periods, as CloudWatch. A value is dated
//                        when the worker read its line, and no earlier than the training job's
//                        TrainingStartTime (which is when the coordinator heard the program
//                        start, milliseconds after it did). ExtendedStatistics
//                        (percentiles) are refused; a Unit other than None matches nothing. Every
//                        attempt's values count (a spot-interrupted training job's too, as
//                        SageMaker's are all published).
//   GetMetricData        MetricDataQueries (1 to 500: Id, MetricStat {Metric {Namespace,
//                        MetricName, Dimensions}, Period, Stat, Unit}, Label, ReturnData),
//                        StartTime, EndTime, ScanBy (TimestampDescending, the default, or
//                        TimestampAscending), MaxDatapoints (default 100,800), NextToken: per
//                        query, the Stat (SampleCount, Average, Sum, Minimum or Maximum) of each
//                        period holding values, as GetMetricStatistics computes it, with no
//                        1,440 limit; a page holds at most MaxDatapoints in all, the queries cut
//                        by it are PartialData and NextToken goes on. Expressions (metric math,
//                        Metrics Insights) and percentiles are refused, naming the query; a Unit
//                        other than None matches nothing (every value's unit is None).
//   ListMetrics          Namespace, MetricName, Dimensions (TrainingJobName; without a Value,
//                        every training job's), NextToken: the metric names each training job
//                        has reported, 500 to a page.
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
// The XML namespace of its query-protocol answers.
inline constexpr const char* kCloudWatchXmlns = "http://monitoring.amazonaws.com/doc/2010-08-01/";

// Handles one CloudWatch request in AWS JSON 1.0: `action` from X-Amz-Target (without the
// prefix), `body` the request JSON.
ApiResponse HandleCloudWatchAction(Dispatcher& d, const std::string& action, const std::string& body);

// Handles one in the query protocol: `form` the form-encoded body (Action, Version 2010-08-01
// and the action's members). Answers and errors are XML.
ApiResponse HandleCloudWatchQuery(Dispatcher& d, const std::string& form);

}  // namespace hpo::coordinator
