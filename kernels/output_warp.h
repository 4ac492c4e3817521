// kernels/output_warp.h: a monotone transform of the objectives before the Gaussian process sees
// them (output warping), chosen by the GP's own likelihood, so that it is used only where it
// explains the data better than the plain model.
//
// What it is for: the GP models its standardised targets as a smooth Gaussian surface. Tuning
// objectives are often skewed: a wide plateau of poor configurations (an SVR whose C is far too
// small, a learning rate that diverges) beside a narrow, deep basin. Modelled as they are, the
// differences inside the basin, the ones that matter, are a small fraction of the scale.
//
// The transform: Yeo-Johnson with parameter lambda on the standardised targets y. Lambda 1 is the
// identity; below 1 the tail of bad values (the model minimises) is compressed and the good tail
// stretched. Strictly increasing for every lambda, so the order of the values, the incumbent and
// every comparison the acquisition makes are kept.
//
// The choice (ChooseOutputLambda): the warped GP's log marginal likelihood of the original targets,
// with the hyperparameters of the plain fit (their overall scale profiled out, so a transform is not
// favoured for changing the spread) and the transform's log-Jacobian, over a grid of lambdas in
// [min_lambda, 1]. Per lambda it is n/2 log(z' K^-1 z) - sum log dz/dy, z the centred transformed
// values, K the plain fit's covariance (one Cholesky factor for all lambdas). The gain is the
// identity's value minus the best one, in nats: a warping the data do not ask for gains nothing.
// (A lambda chosen by a Gaussian likelihood of the values alone, without the GP, compressed every
// value worse than the mean into one on Branin and stranded runs far from the optimum:
// bench/RESULTS.md, 2026-12-05.)
#pragma once

#include <cstddef>

#include <Eigen/Core>

namespace hpo::kernels {

inline constexpr double kMinOutputLambda = -2.0;
inline constexpr size_t kMinOutputWarpPoints = 5;

// The Yeo-Johnson transform of one value, and the log of its derivative.
double YeoJohnson(double x, double lambda);
double YeoJohnsonLogSlope(double x, double lambda);

struct OutputWarpChoice {
  double lambda = 1.0;  // 1: the identity
  double gain = 0.0;    // nats of log marginal likelihood over the identity (>= 0)
};

// `chol`: the lower Cholesky factor of the plain fit's covariance (noise included) at the points
// of `y`, the standardised targets. Fewer than kMinOutputWarpPoints values: lambda 1, gain 0.
OutputWarpChoice ChooseOutputLambda(const Eigen::MatrixXd& chol, const Eigen::VectorXd& y,
                                    double min_lambda = kMinOutputLambda);

// y -> YeoJohnson(y, lambda), then standardised again (mean 0, standard deviation 1; left centred
// only when the spread is 0).
void ApplyOutputWarp(double lambda, Eigen::VectorXd* y);

}  // namespace hpo::kernels
