// kernels/lbfgs.h: a small limited-memory BFGS minimiser with box bounds, for the GP's
// hyperparameters (a few dozen variables, each evaluation costing a Cholesky factorisation).
//
// Method: the two-loop recursion gives a quasi-Newton direction; variables at a bound whose
// gradient points outward are held fixed for the step (their direction component is zeroed);
// the step is clipped into the box (projected path) and accepted by backtracking on the Armijo
// condition. When the direction is not a descent direction or the line search fails, the memory
// is cleared and the projected steepest-descent direction is tried; a second failure ends the
// run. Pairs with s.y <= 1e-12 |s| |y| are not stored (keeps the inverse-Hessian model positive).
// An objective value that is not finite counts as a failed trial point, so a factorisation that
// fails mid-search shortens the step instead of aborting.
//
// Stops after max_iterations iterations, when the projected gradient's largest entry is below
// gradient_tolerance, or when an iteration improves f by less than
// relative_tolerance * max(1, |f|).
//
// Thread safety: a pure function; `f` is called from the calling thread only.
#pragma once

#include <functional>

#include <Eigen/Core>

namespace hpo::kernels {

struct LbfgsOptions {
  int max_iterations = 60;
  int memory = 8;
  double gradient_tolerance = 1e-5;
  double relative_tolerance = 1e-9;
};

struct LbfgsResult {
  Eigen::VectorXd x;
  double f = 0;
  int iterations = 0;
  int evaluations = 0;
  bool converged = false;  // a tolerance was met (not the iteration limit or a failed search)
};

// f(x, grad) returns the objective and writes its gradient into *grad (same size as x).
using Objective = std::function<double(const Eigen::VectorXd& x, Eigen::VectorXd* grad)>;

// Minimises f over the box [lower, upper] from x0 (clipped into the box). lower <= upper
// entrywise, all three the same size. When f(x0) is not finite the result is x0 with that f.
LbfgsResult MinimizeBoxed(const Objective& f, const Eigen::VectorXd& x0, const Eigen::VectorXd& lower,
                          const Eigen::VectorXd& upper, const LbfgsOptions& options);

}  // namespace hpo::kernels
