// kernels/host_ascent.h (internal to kernels/): the host loop of GpEngine::Ascend and
// GpEngine::DescendMean, for any score: one call of `score` per iteration on the starts still
// moving, each start's step as kernels/ascent_step.h writes it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "kernels/gp_engine.h"

namespace hpo::kernels {

// The score to climb at every column of `points` (D x m): *value (m) and *grad (D x m, its
// gradient). A failed status ends the ascent with it.
using AscentScore = std::function<GpStatus(const Eigen::MatrixXd& points, Eigen::VectorXd* value, Eigen::MatrixXd* grad)>;

// Projected gradient ascent of `score` from every column of `starts` for at most `iterations`
// rounds (GpEngine::Ascend's contract for `movable`, steps and stopping). *ends: the points
// reached; *values: the score there.
GpStatus HostAscent(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, int iterations,
                    const AscentScore& score, Eigen::MatrixXd* ends, Eigen::VectorXd* values);

}  // namespace hpo::kernels
