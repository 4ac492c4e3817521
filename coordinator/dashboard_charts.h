// coordinator/dashboard_charts.h (internal to coordinator/dashboard.cc): the dashboard's SVG
// charts. Each returns one <svg> element (inline, no scripts; every point or line a link to its
// training job, named on hover), or "" when there is nothing to draw. Text is escaped.
//
// Thread safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/dashboard.h"
#include "coordinator/importance.h"

namespace hpo::coordinator::dashboard::charts {

// What a chart needs of a training job.
struct TrialPoint {
  std::string name, status, definition;
  int number = 0;  // 1-based, in creation order
  std::optional<double> objective;
  std::map<std::string, std::string> tuned;
  double created = 0, started = 0, ended = 0;
  std::string failure;
};

// One tuned hyperparameter as the dashboard draws it.
struct RangeInfo {
  std::string name, kind;  // kind: Integer, Continuous, Categorical
  double min = 0, max = 0;
  bool log = false;
  bool reverse_log = false;  // ReverseLogarithmic (drawn so, every decade of 1 - v alike)
  std::vector<std::string> values;  // Categorical
  // Set when the job's definitions give this name different ranges: the range of that
  // definition, whose training jobs alone a chart of it draws.
  std::string definition;
};

// "%.6g", and NaN/inf spelled out.
std::string Num(double v);
// The whole of `s` as a finite number, else nullopt.
std::optional<double> ParseDouble(const std::string& s);
inline bool Better(double a, double b, bool minimize) { return minimize ? a < b : a > b; }
// A status whose objective is a latest value, not a final one (InProgress, Stopping).
inline bool Running(const std::string& status) { return status == "InProgress" || status == "Stopping"; }

// Objective by training job (creation order) with the best-so-far step line.
std::string ObjectiveChart(const std::vector<TrialPoint>& trials, const std::string& metric, bool minimize,
                           const std::string& best);
// The objective against one hyperparameter, on its range's scale (log, linear or categorical bands).
std::string ScatterChart(const RangeInfo& r, const std::vector<TrialPoint>& trials, const std::string& metric,
                         const std::string& best);
// The best so far of each job of a Compare document (coordinator/dashboard.h) by training job,
// one colored step line per job (CompareColor(i) for the i-th), the budget marked; "" when no job
// has a value yet.
std::string CompareChart(const Json& comparison);
// The color of the i-th job on the comparison chart and its legend.
const char* CompareColor(size_t i);
// Learning curves from a /hpo/v1/curves document; "" unless some curve has two points.
std::string CurvesChart(const Json& curves, const std::vector<TrialPoint>& trials, const std::string& metric,
                        const std::string& best);
// Parallel coordinates over `ranges` and the objective, coloured by rank; `definition` names the
// training job definition in the title ("" for none).
std::string ParallelChart(const std::vector<RangeInfo>& ranges, const std::vector<TrialPoint>& trials,
                          const std::string& metric, bool minimize, const std::string& best,
                          const std::string& definition);
// Which hyperparameters mattered (coordinator/importance.h): one bar per hyperparameter, most
// important first (at most 12), its first-order share solid and its total share light; ""
// when the report is flat or empty. `definition` as ParallelChart's.
std::string ImportanceChart(const ImportanceReport& report, const std::string& definition);
// The colour key of the charts' points.
std::string Legend();

}  // namespace hpo::coordinator::dashboard::charts
