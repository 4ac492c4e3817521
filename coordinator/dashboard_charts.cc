#include "coordinator/dashboard_charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <utility>

#include "common/text.h"

namespace hpo::coordinator::dashboard::charts {

std::string Num(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::optional<double> ParseDouble(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (!end || *end != '\0' || !std::isfinite(d)) return std::nullopt;
  return d;
}

namespace {

// At most `chars` characters, the last one "~" when cut: cut between characters, never inside
// one (a cut UTF-8 sequence made the page invalid UTF-8, shown as U+FFFD).
std::string Clip(const std::string& s, size_t chars) {
  return Utf8Length(s) > chars ? Utf8Prefix(s, chars - 1) + "~" : s;
}

// ---------------------------------------------------------------------------------------------
// Charts: inline SVG

const char* kBlue = "#1f6fb4";
const char* kOrange = "#e07b12";
const char* kGreen = "#23912f";
const char* kRed = "#c2352b";
const char* kGray = "#8a9099";

// A training job's point or line: completed blue, stopped orange, failed red (its learning curve
// only: a failed training job has no final objective, as on SageMaker), still running gray (its
// latest value, which may change). Failed and running ones were drawn as completed.
const char* StatusColor(const std::string& status) {
  if (status == "Stopped") return kOrange;
  if (status == "Failed") return kRed;
  if (Running(status)) return kGray;
  return kBlue;
}

struct Scale {
  double lo = 0, hi = 1;  // domain (log10 of it when log, -log10(1 - it) when reverse)
  double p0 = 0, p1 = 1;  // pixels
  bool log = false;
  // ReverseLogarithmic (values below 1, dense towards 1: a momentum 0.9 to 0.999): each decade of
  // 1 - v takes the same room, as the search spaces it.
  bool reverse = false;
  double operator()(double v) const {
    double x = reverse ? -std::log10(std::max(1.0 - v, 1e-300)) : log ? std::log10(std::max(v, 1e-300)) : v;
    if (hi == lo) return (p0 + p1) / 2;
    return p0 + (x - lo) / (hi - lo) * (p1 - p0);
  }
};

// A scale over [lo, hi] with a margin of 4% either side; log (or reverse log) when asked and
// possible.
Scale MakeScale(double lo, double hi, bool log, double p0, double p1, bool reverse = false) {
  Scale s;
  s.reverse = reverse && lo < 1 && hi < 1;
  s.log = !s.reverse && log && lo > 0 && hi > 0;
  if (s.reverse) {
    lo = -std::log10(1.0 - lo);
    hi = -std::log10(1.0 - hi);
  } else if (s.log) {
    lo = std::log10(lo);
    hi = std::log10(hi);
  }
  if (!(hi > lo)) {
    double pad = std::abs(lo) > 0 ? std::abs(lo) * 0.1 : 1.0;
    if (s.log || s.reverse) pad = 0.5;
    lo -= pad;
    hi += pad;
  }
  double m = (hi - lo) * 0.04;
  s.lo = lo - m;
  s.hi = hi + m;
  s.p0 = p0;
  s.p1 = p1;
  return s;
}

// Tick values inside the scale's domain: 1-2-5 steps, or powers of ten (with 2 and 5 between
// them when the domain spans less than three decades) on a log scale.
std::vector<double> Ticks(const Scale& s) {
  std::vector<double> t;
  if (s.reverse) {  // the log scale's ticks of 1 - v (0.1, 0.01: 0.9, 0.99), as values of v
    Scale of_rest = s;
    of_rest.reverse = false;
    of_rest.log = true;
    of_rest.lo = -s.hi;
    of_rest.hi = -s.lo;
    for (double u : Ticks(of_rest)) t.insert(t.begin(), 1.0 - u);
    return t;
  }
  if (s.log) {
    int k0 = static_cast<int>(std::floor(s.lo)), k1 = static_cast<int>(std::ceil(s.hi));
    int decades = k1 - k0;
    int every = std::max(1, decades / 6);
    for (int k = k0; k <= k1; ++k) {
      for (double m : {1.0, 2.0, 5.0}) {
        if (m != 1.0 && decades > 3) continue;
        if (m == 1.0 && (k - k0) % every) continue;
        double v = m * std::pow(10.0, k);
        double lv = std::log10(v);
        if (lv >= s.lo && lv <= s.hi) t.push_back(v);
      }
    }
    if (t.size() >= 2) return t;
    t.clear();  // under a decade: linear ticks between the ends
    double lo = std::pow(10.0, s.lo), hi = std::pow(10.0, s.hi);
    Scale lin = s;
    lin.log = false;
    lin.lo = lo;
    lin.hi = hi;
    return Ticks(lin);
  }
  double span = s.hi - s.lo;
  if (!(span > 0)) return {s.lo};
  double raw = span / 5;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  }
  for (double v = std::ceil(s.lo / step) * step; v <= s.hi + step * 1e-9; v += step) {
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    if (t.size() > 12) break;
  }
  return t;
}

struct Frame {
  int width = 820, height = 300;
  int left = 64, right = 16, top = 30, bottom = 44;
  std::string title, x_title, y_title;
};

// The chart's background: title, grid lines with their labels, axis titles.
std::string DrawFrame(const Frame& f, const Scale& x, const std::vector<std::pair<double, std::string>>& xticks,
                      const Scale& y) {
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(f.width) + "\" height=\"" +
                  std::to_string(f.height) + "\" viewBox=\"0 0 " + std::to_string(f.width) + " " +
                  std::to_string(f.height) + "\" role=\"img\">";
  s += "<text class=\"title\" x=\"" + std::to_string(f.left) + "\" y=\"18\">" + Escape(f.title) + "</text>";
  char buf[256];
  const double x0 = f.left, x1 = f.width - f.right, y0 = f.height - f.bottom, y1 = f.top;
  for (double v : Ticks(y)) {
    double py = y(v);
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e8ebef\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                  x0, py, x1, py, x0 - 5, py + 4);
    s += buf + Escape(Num(v)) + "</text>";
  }
  for (const auto& [px, label] : xticks) {
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e8ebef\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                  px, y0, px, y1, px, y0 + 15);
    s += buf + Escape(label) + "</text>";
  }
  (void)x;
  std::snprintf(buf, sizeof buf,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#8a94a3\"/>"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#8a94a3\"/>",
                x0, y0, x1, y0, x0, y0, x0, y1);
  s += buf;
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", (x0 + x1) / 2, f.height - 8);
  s += buf + Escape(f.x_title) + "</text>";
  std::snprintf(buf, sizeof buf, "<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">",
                (y0 + y1) / 2, (y0 + y1) / 2);
  s += buf + Escape(f.y_title) + "</text>";
  return s;
}

std::vector<std::pair<double, std::string>> NumericTicks(const Scale& x) {
  std::vector<std::pair<double, std::string>> out;
  for (double v : Ticks(x)) out.emplace_back(x(v), Num(v));
  return out;
}

// Ticks of a count (training jobs, epochs): whole numbers only.
std::vector<std::pair<double, std::string>> CountTicks(const Scale& x) {
  std::vector<std::pair<double, std::string>> out;
  for (double v : Ticks(x)) {
    if (v >= 1 && v == std::round(v)) out.emplace_back(x(v), Num(v));
  }
  return out;
}

// A point of a chart that links to its training job and names it on hover.
std::string Point(double px, double py, double r, const char* color, const std::string& trial, const std::string& tip,
                  bool ring = false) {
  char buf[200];
  if (ring) {
    std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>",
                  px, py, r + 3.5, kGreen);
  } else {
    buf[0] = '\0';
  }
  std::string s = buf;
  std::snprintf(buf, sizeof buf, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"0.8\">",
                px, py, r, color);
  return s + "<a href=\"/ui/trials/" + Escape(trial) + "\">" + buf + "<title>" + Escape(tip) + "</title></circle></a>";
}

// The y scale for objective values: log when all are positive and span three decades or more.
Scale ObjectiveScale(const std::vector<double>& values, double p0, double p1) {
  double lo = *std::min_element(values.begin(), values.end());
  double hi = *std::max_element(values.begin(), values.end());
  bool log = lo > 0 && hi / lo >= 1000;
  return MakeScale(lo, hi, log, p0, p1);
}



// From green (rank 0, the best) through yellow to red (rank 1, the worst).
std::string RankColor(double rank) {
  rank = std::clamp(rank, 0.0, 1.0);
  int r, g, b;
  if (rank < 0.5) {  // #1a9641 -> #e6c619
    const double u = rank / 0.5;
    r = static_cast<int>(26 + (230 - 26) * u), g = static_cast<int>(150 + (198 - 150) * u), b = static_cast<int>(65 + (25 - 65) * u);
  } else {           // #e6c619 -> #d7191c
    const double u = (rank - 0.5) / 0.5;
    r = static_cast<int>(230 + (215 - 230) * u), g = static_cast<int>(198 + (25 - 198) * u), b = static_cast<int>(25 + (28 - 25) * u);
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

}  // namespace

std::string ObjectiveChart(const std::vector<TrialPoint>& trials, const std::string& metric, bool minimize,
                           const std::string& best) {
  std::vector<double> ys;
  for (const auto& t : trials) {
    if (t.objective) ys.push_back(*t.objective);
  }
  if (ys.empty()) return "";
  Frame f;
  f.title = "Objective by training job";
  f.x_title = "training job (in order of creation)";
  f.y_title = metric + (minimize ? " (lower is better)" : " (higher is better)");
  int n = 0;
  for (const auto& t : trials) n = std::max(n, t.number);
  Scale x = MakeScale(1, std::max(n, 2), false, f.left, f.width - f.right);
  Scale y = ObjectiveScale(ys, f.height - f.bottom, f.top);
  std::string s = DrawFrame(f, x, CountTicks(x), y);
  // Best so far: a step line through the ended jobs in creation order. A running one's point is
  // its latest value, which may never be its final one (the line once went through such a value,
  // below anything the job ended with).
  std::optional<double> best_so_far;
  char buf[96];
  std::vector<const TrialPoint*> ordered;
  for (const auto& t : trials) ordered.push_back(&t);
  std::sort(ordered.begin(), ordered.end(), [](const TrialPoint* a, const TrialPoint* b) { return a->number < b->number; });
  std::string path;
  for (const TrialPoint* t : ordered) {
    if (!t->objective || Running(t->status)) continue;
    if (!best_so_far || Better(*t->objective, *best_so_far, minimize)) {
      if (best_so_far) {
        std::snprintf(buf, sizeof buf, " L%.1f %.1f", x(t->number), y(*best_so_far));
        path += buf;
      }
      best_so_far = t->objective;
      std::snprintf(buf, sizeof buf, "%s%.1f %.1f", path.empty() ? "M" : " L", x(t->number), y(*best_so_far));
      path += buf;
    }
  }
  if (best_so_far) {  // none while every job with a value still runs
    std::snprintf(buf, sizeof buf, " L%.1f %.1f", x(n), y(*best_so_far));
    path += buf;
    s += "<path class=\"best-so-far\" d=\"" + path + "\" fill=\"none\" stroke=\"" + kGreen + "\" stroke-width=\"2\"/>";
  }
  for (const TrialPoint* t : ordered) {
    if (!t->objective) continue;
    s += Point(x(t->number), y(*t->objective), 4, StatusColor(t->status), t->name,
               t->name + ": " + metric + " " + Num(*t->objective) + " (" + t->status + ")", t->name == best);
  }
  return s + "</svg>";
}


std::string ScatterChart(const RangeInfo& r, const std::vector<TrialPoint>& all, const std::string& metric,
                         const std::string& best) {
  std::vector<TrialPoint> own;  // a definition's range: its training jobs only
  for (const auto& t : all) {
    if (!r.definition.empty() && t.definition == r.definition) own.push_back(t);
  }
  const std::vector<TrialPoint>& trials = r.definition.empty() ? all : own;
  std::vector<double> ys;
  for (const auto& t : trials) {
    if (t.objective && t.tuned.count(r.name)) ys.push_back(*t.objective);
  }
  if (ys.empty()) return "";
  Frame f;
  f.width = 300;
  f.height = 230;
  f.left = 58;
  f.title = Clip(r.definition.empty() ? r.name : r.name + " (" + r.definition + ")", 40);  // the chart is 300 px wide
  f.x_title = Clip(r.name, 30) + (r.kind == "Categorical" ? ""
                                  : r.reverse_log         ? " (reverse log scale)"
                                  : r.log                 ? " (log scale)"
                                                          : "");
  f.y_title = metric;
  Scale y = ObjectiveScale(ys, f.height - f.bottom, f.top);
  std::vector<std::pair<double, std::string>> xticks;
  Scale x;
  std::function<std::optional<double>(const TrialPoint&)> px;
  if (r.kind == "Categorical") {
    const double w = (f.width - f.right - f.left) / std::max<double>(1, r.values.size());
    for (size_t i = 0; i < r.values.size(); ++i) {
      std::string label = Clip(r.values[i], 12);
      xticks.emplace_back(f.left + w * (i + 0.5), label);
    }
    px = [&r, w, left = f.left](const TrialPoint& t) -> std::optional<double> {
      auto it = std::find(r.values.begin(), r.values.end(), t.tuned.at(r.name));
      if (it == r.values.end()) return std::nullopt;
      // Spread the points of one value across its band, the same way on every page load.
      double jitter = (std::hash<std::string>{}(t.name) % 1000) / 1000.0 - 0.5;
      return left + w * ((it - r.values.begin()) + 0.5 + jitter * 0.6);
    };
  } else {
    x = MakeScale(r.min, r.max, r.log, f.left, f.width - f.right, r.reverse_log);
    xticks = NumericTicks(x);
    if (xticks.size() > 6) {  // keep the labels of a narrow chart apart
      std::vector<std::pair<double, std::string>> fewer;
      for (size_t i = 0; i < xticks.size(); i += 2) fewer.push_back(xticks[i]);
      xticks = fewer;
    }
    px = [&r, &x](const TrialPoint& t) -> std::optional<double> {
      auto v = ParseDouble(t.tuned.at(r.name));
      if (!v) return std::nullopt;
      return x(*v);
    };
  }
  std::string s = DrawFrame(f, x, xticks, y);
  for (const auto& t : trials) {
    if (!t.objective || !t.tuned.count(r.name)) continue;
    auto p = px(t);
    if (!p) continue;
    s += Point(*p, y(*t.objective), 3.5, StatusColor(t.status), t.name,
               t.name + ": " + r.name + "=" + t.tuned.at(r.name) + ", " + metric + " " + Num(*t.objective),
               t.name == best);
  }
  return s + "</svg>";
}

std::string CurvesChart(const Json& curves, const std::vector<TrialPoint>& trials, const std::string& metric,
                        const std::string& best) {
  if (!curves.is_object() || !curves.contains("Curves") || !curves["Curves"].is_object()) return "";
  std::map<std::string, const TrialPoint*> by_name;
  for (const auto& t : trials) by_name[t.name] = &t;
  std::vector<double> ys;
  size_t longest = 0;
  for (const auto& [name, c] : curves["Curves"].items()) {
    if (!c.is_array()) continue;
    longest = std::max(longest, c.size());
    for (const auto& v : c) {
      if (v.is_number() && std::isfinite(v.get<double>())) ys.push_back(v.get<double>());
    }
  }
  if (longest < 2 || ys.empty()) return "";  // nothing iterative to show
  Frame f;
  f.title = "Learning curves";
  f.x_title = "emission of the objective metric (epoch)";
  f.y_title = metric;
  Scale x = MakeScale(1, static_cast<double>(longest), false, f.left, f.width - f.right);
  Scale y = ObjectiveScale(ys, f.height - f.bottom, f.top);
  std::string s = DrawFrame(f, x, CountTicks(x), y);
  std::string best_line;
  char buf[64];
  // Where a later attempt of a training job begins (a curve of every attempt): a dashed line
  // before its first value, named, so a resumed curve does not read as one run.
  if (const Json* starts = curves.contains("AttemptStarts") && curves["AttemptStarts"].is_object()
                               ? &curves["AttemptStarts"]
                               : nullptr) {
    for (const auto& [name, at] : starts->items()) {
      if (!at.is_array()) continue;
      for (size_t k = 0; k < at.size(); ++k) {
        if (!at[k].is_number_unsigned()) continue;
        const double xv = x(static_cast<double>(at[k].get<size_t>()) + 0.5);
        std::snprintf(buf, sizeof buf, "%.1f", xv);
        s += std::string("<line class=\"attempt\" x1=\"") + buf + "\" x2=\"" + buf + "\" y1=\"" +
             std::to_string(f.top) + "\" y2=\"" + std::to_string(f.height - f.bottom) +
             "\" stroke=\"#888\" stroke-dasharray=\"4 3\"><title>" + Escape(name) + ": attempt " +
             std::to_string(k + 2) + " begins</title></line><text class=\"attempt\" x=\"" + buf + "\" y=\"" +
             std::to_string(f.top + 12) + "\" font-size=\"10\" fill=\"#666\"> attempt " + std::to_string(k + 2) +
             "</text>";
      }
    }
  }
  for (const auto& [name, c] : curves["Curves"].items()) {
    if (!c.is_array() || c.empty()) continue;
    auto it = by_name.find(name);
    const std::string status = it == by_name.end() ? "" : it->second->status;
    std::string pts;
    size_t drawn = 0;
    double cx = 0, cy = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      if (!c[i].is_number() || !std::isfinite(c[i].get<double>())) continue;
      cx = x(static_cast<double>(i + 1)), cy = y(c[i].get<double>());
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", cx, cy);
      pts += buf;
      ++drawn;
    }
    const bool is_best = name == best;
    const char* color = is_best ? kGreen : StatusColor(status);
    const std::string title =
        "<title>" + Escape(name + " (" + status + ", " + std::to_string(c.size()) + " values)") + "</title>";
    std::string line = "<a href=\"/ui/trials/" + Escape(name) + "\"><polyline class=\"curve\" points=\"" + pts +
                       "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"" + (is_best ? "2.5" : "1.2") +
                       "\" stroke-opacity=\"" + (is_best ? "1" : "0.55") + "\">" + title + "</polyline>";
    // A curve of one value (a training job stopped early at its first report) is a point, which a
    // polyline does not draw: a dot, or the jobs stopped soonest were missing from the chart.
    if (drawn == 1) {
      std::snprintf(buf, sizeof buf, "<circle class=\"curve-point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"", cx, cy);
      line += buf + std::string(color) + "\">" + title + "</circle>";
    }
    line += "</a>";
    if (is_best) {
      best_line = line;  // drawn last, on top
    } else {
      s += line;
    }
  }
  return s + best_line + "</svg>";
}

// Parallel coordinates: an axis per tuned hyperparameter (on its range's scale) and one for the
// objective; each training job with an objective a line across them, coloured by its rank.
std::string ParallelChart(const std::vector<RangeInfo>& ranges, const std::vector<TrialPoint>& trials,
                          const std::string& metric, bool minimize, const std::string& best,
                          const std::string& definition) {
  std::vector<const TrialPoint*> with;
  for (const auto& t : trials) {
    if (t.objective) with.push_back(&t);
  }
  if (ranges.size() < 2 || with.size() < 2) return "";
  // Running ones first (drawn under the rest, gray: their value is the latest, not a final one;
  // they were coloured best to worst with the ended ones, a dashboard pass), then the ended ones
  // worst first, so the best are drawn on top.
  std::stable_sort(with.begin(), with.end(), [&](const TrialPoint* a, const TrialPoint* b) {
    if (Running(a->status) != Running(b->status)) return Running(a->status);
    return Better(*b->objective, *a->objective, minimize);
  });
  std::vector<double> ended_values;  // each ended one's colour is its place among these
  for (const TrialPoint* t : with) {
    if (!Running(t->status)) ended_values.push_back(*t->objective);
  }
  std::vector<double> ys;
  for (const TrialPoint* t : with) ys.push_back(*t->objective);
  const int width = std::max(620, static_cast<int>(ranges.size() + 1) * 120), height = 330;
  const double top = 34, bottom = height - 40.0, left = 60, right = width - 60.0;
  const double step = (right - left) / static_cast<double>(ranges.size());
  std::vector<Scale> scales;
  // The title, and the colours' legend at the right: a definition's name (up to 64 characters)
  // ran the title past the chart's edge. The title's 13 px bold averages about 8 px a character
  // and the legend takes about 150 px, so the name is cut to what is left.
  const std::string title_start = definition.empty() ? "Every hyperparameter at once" : "Every hyperparameter of definition ";
  const size_t title_chars = static_cast<size_t>(std::max(0.0, (width - left - 8 - 150) / 8.0));
  const std::string title =
      definition.empty() ? title_start
                         : title_start + Clip(definition, std::max<size_t>(12, title_chars > title_start.size()
                                                                                   ? title_chars - title_start.size()
                                                                                   : 0));
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"parallel\" width=\"" + std::to_string(width) +
                  "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                  std::to_string(height) + "\" role=\"img\"><text class=\"title\" x=\"" + std::to_string(static_cast<int>(left)) +
                  "\" y=\"18\">" + Escape(title) + "</text><text x=\"" + std::to_string(width - 8) +
                  "\" y=\"18\" text-anchor=\"end\">green: best, red: worst</text>";
  char buf[256];
  // Axes with their ticks and names.
  auto axis = [&](double x, const std::string& name, const std::vector<std::pair<double, std::string>>& ticks) {
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#8a94a3\"/>", x, top, x,
                  bottom);
    s += buf;
    for (const auto& [py, label] : ticks) {
      std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", x - 4, py + 4);
      s += buf + Escape(label) + "</text>";
    }
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-weight=\"600\">", x, bottom + 18);
    s += buf + Escape(Clip(name, 18)) + "</text>";
  };
  std::vector<std::function<std::optional<double>(const TrialPoint&)>> position;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const RangeInfo& r = ranges[i];
    const double x = left + step * static_cast<double>(i);
    std::vector<std::pair<double, std::string>> ticks;
    if (r.kind == "Categorical") {
      const double band = (bottom - top) / std::max<double>(1, r.values.size());
      for (size_t k = 0; k < r.values.size(); ++k) {
        ticks.emplace_back(bottom - band * (k + 0.5), Clip(r.values[k], 12));
      }
      position.push_back([&r, band, bottom](const TrialPoint& t) -> std::optional<double> {
        auto it = t.tuned.find(r.name);
        if (it == t.tuned.end()) return std::nullopt;
        auto v = std::find(r.values.begin(), r.values.end(), it->second);
        if (v == r.values.end()) return std::nullopt;
        return bottom - band * ((v - r.values.begin()) + 0.5);
      });
    } else {
      scales.push_back(MakeScale(r.min, r.max, r.log, bottom, top, r.reverse_log));
      const Scale sc = scales.back();
      for (double v : Ticks(sc)) ticks.emplace_back(sc(v), Num(v));
      if (ticks.size() > 6) {
        std::vector<std::pair<double, std::string>> fewer;
        for (size_t k = 0; k < ticks.size(); k += 2) fewer.push_back(ticks[k]);
        ticks = fewer;
      }
      position.push_back([&r, sc](const TrialPoint& t) -> std::optional<double> {
        auto it = t.tuned.find(r.name);
        if (it == t.tuned.end()) return std::nullopt;
        auto v = ParseDouble(it->second);
        if (!v) return std::nullopt;
        return sc(*v);
      });
    }
    axis(x, r.name, ticks);
  }
  const Scale ysc = ObjectiveScale(ys, bottom, top);
  std::vector<std::pair<double, std::string>> yticks;
  for (double v : Ticks(ysc)) yticks.emplace_back(ysc(v), Num(v));
  axis(right, metric, yticks);
  for (size_t rank = 0; rank < with.size(); ++rank) {
    const TrialPoint& t = *with[rank];
    std::string pts;
    bool complete = true;
    for (size_t i = 0; i < ranges.size() && complete; ++i) {
      auto py = position[i](t);
      if (!py) {
        complete = false;
        break;
      }
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", left + step * static_cast<double>(i), *py);
      pts += buf;
    }
    if (!complete) continue;  // another definition's job, without one of these hyperparameters
    std::snprintf(buf, sizeof buf, "%.1f,%.1f", right, ysc(*t.objective));
    pts += buf;
    // Its colour: 0 the best, 1 the worst, by how many ended ones are better than it (ties share
    // the better place: equal objectives were drawn in several colours, then as the worst).
    const size_t better = static_cast<size_t>(std::count_if(ended_values.begin(), ended_values.end(), [&](double v) {
      return Better(v, *t.objective, minimize);
    }));
    const double r01 =
        ended_values.size() > 1 ? static_cast<double>(better) / static_cast<double>(ended_values.size() - 1) : 0;
    const bool is_best = t.name == best;
    const std::string colour = is_best ? std::string(kGreen) : Running(t.status) ? std::string(kGray) : RankColor(r01);
    s += "<a href=\"/ui/trials/" + Escape(t.name) + "\"><polyline class=\"pc\" points=\"" + pts + "\" fill=\"none\" stroke=\"" +
         colour + "\" stroke-width=\"" + (is_best ? "3" : "1.3") + "\" stroke-opacity=\"" + (is_best ? "1" : "0.6") +
         "\"><title>" +
         Escape(t.name + ": " + metric + " " + Num(*t.objective) +
                (Running(t.status) ? " (running: its latest value)" : "")) +
         "</title></polyline></a>";
  }
  return s + "</svg>";
}

std::string ImportanceChart(const ImportanceReport& report, const std::string& definition) {
  if (report.flat || report.parameters.empty()) return "";
  constexpr size_t kRows = 12;
  const size_t rows = std::min(report.parameters.size(), kRows);
  size_t label_chars = 4;
  for (size_t i = 0; i < rows; ++i) label_chars = std::max(label_chars, Utf8Length(report.parameters[i].name));
  label_chars = std::min<size_t>(label_chars, 28);
  const int label_w = static_cast<int>(label_chars) * 7 + 16, bar_w = 300, row_h = 22, top = 34;
  const int height = top + static_cast<int>(rows) * row_h + (report.parameters.size() > rows ? 22 : 8);
  const std::string title = (definition.empty() ? std::string("What mattered") : "What mattered in " + Clip(definition, 40)) +
                            ": share of the objective's variation (a model of " + std::to_string(report.observations) +
                            " training jobs)";
  // Wide enough for the title too (about 7.5 px a character at its size): it was cut off at
  // "(a model of 15 training job" when the names were short.
  const int width = std::max(label_w + bar_w + 230, static_cast<int>(Utf8Length(title)) * 15 / 2 + 16);
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"importance\" width=\"" + std::to_string(width) +
                  "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                  std::to_string(height) + "\" role=\"img\"><text class=\"title\" x=\"8\" y=\"18\">" + Escape(title) +
                  "</text>";
  char buf[512];
  for (size_t i = 0; i < rows; ++i) {
    const ParameterImportance& p = report.parameters[i];
    const int y = top + static_cast<int>(i) * row_h;
    const int alone = static_cast<int>(std::lround(p.first_order * bar_w));
    const int with = std::max(alone, static_cast<int>(std::lround(p.total * bar_w)));
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 8, y + 14);
    s += buf + Escape(Clip(p.name, label_chars)) + "<title>" + Escape(p.name) + "</title></text>";
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"14\" fill=\"#eef1f4\"/>"
                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"14\" fill=\"%s\" fill-opacity=\"0.35\"/>"
                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"14\" fill=\"%s\"/>"
                  "<text x=\"%d\" y=\"%d\">%.0f %% alone, %.0f %% with interactions</text>",
                  label_w, y + 3, bar_w, label_w, y + 3, with, kBlue, label_w, y + 3, alone, kBlue, label_w + bar_w + 8,
                  y + 14, 100 * p.first_order, 100 * p.total);
    s += buf;
  }
  if (report.parameters.size() > rows) {
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\">... %zu more</text>", label_w,
                  top + static_cast<int>(rows) * row_h + 12, report.parameters.size() - rows);
    s += buf;
  }
  return s + "</svg>";
}

const char* CompareColor(size_t i) {
  static const char* const kPalette[] = {"#1f77b4", "#e07b12", "#23912f", "#c2352b", "#7b4fc2",
                                         "#8c564b", "#d6379f", "#5f6670", "#a5a515", "#17a3b8"};
  return kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
}

std::string CompareChart(const Json& comparison) {
  const Json& jobs = comparison["Jobs"];
  std::vector<double> ys;
  size_t longest = 0;
  for (const Json& j : jobs) {
    longest = std::max(longest, j["BestSoFar"].size());
    for (const Json& v : j["BestSoFar"]) {
      if (v.is_number()) ys.push_back(v.get<double>());
    }
  }
  if (ys.empty()) return "";
  const bool minimize = comparison["Type"] != "Maximize";
  Frame f;
  f.title = "Best objective so far, by training job";
  f.x_title = "training jobs (in order of creation)";
  f.y_title = comparison["Type"].is_string() && comparison["MetricName"].is_string()
                  ? comparison["MetricName"].get<std::string>() + (minimize ? " (lower is better)" : " (higher is better)")
                  : "objective (the jobs' objectives differ)";
  Scale x = MakeScale(1, static_cast<double>(std::max<size_t>(longest, 2)), false, f.left, f.width - f.right);
  Scale y = ObjectiveScale(ys, f.height - f.bottom, f.top);
  std::string s = DrawFrame(f, x, CountTicks(x), y);
  char buf[200];
  const double budget = comparison.value("Budget", 0.0);
  if (budget >= 1 && budget <= static_cast<double>(longest)) {
    std::snprintf(buf, sizeof buf,
                  "<line class=\"budget\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
                  "stroke-dasharray=\"4 3\"/>",
                  x(budget), f.top, x(budget), f.height - f.bottom, kGray);
    s += buf;
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Json& series = jobs[i]["BestSoFar"];
    std::string path;
    std::optional<double> last;
    for (size_t k = 0; k < series.size(); ++k) {
      if (!series[k].is_number()) continue;
      const double v = series[k].get<double>();
      if (!last) {
        std::snprintf(buf, sizeof buf, "M%.1f %.1f", x(static_cast<double>(k + 1)), y(v));
      } else if (v != *last) {
        std::snprintf(buf, sizeof buf, " L%.1f %.1f L%.1f %.1f", x(static_cast<double>(k + 1)), y(*last),
                      x(static_cast<double>(k + 1)), y(v));
      } else {
        continue;
      }
      path += buf;
      last = v;
    }
    if (!last) continue;
    std::snprintf(buf, sizeof buf, " L%.1f %.1f", x(static_cast<double>(series.size())), y(*last));
    path += buf;
    s += "<path class=\"job-best\" d=\"" + path + "\" fill=\"none\" stroke=\"" + CompareColor(i) +
         "\" stroke-width=\"2\"><title>" + Escape(jobs[i].value("Label", "")) + ": best " + Num(*last) +
         "</title></path>";
  }
  return s + "</svg>";
}

std::string Legend() {
  return std::string("<div class=\"legend muted\"><span><i class=\"dot\" style=\"background:") + kBlue +
         "\"></i>completed</span><span><i class=\"dot\" style=\"background:" + kOrange +
         "\"></i>stopped (early stopping, Hyperband or a stop)</span><span><i class=\"dot\" style=\"background:" +
         kRed + "\"></i>failed (its curve; no final objective)</span><span><i class=\"dot\" style=\"background:" + kGray +
         "\"></i>running (its latest value)</span><span><i class=\"dot\" style=\"border:2px solid " +
         kGreen + ";width:7px;height:7px\"></i>best training job</span><span>click a point for its training job</span></div>";
}

}  // namespace hpo::coordinator::dashboard::charts
