# bench/common.sh: sourced by the bench/*/run.sh scripts that compare hpo with Python peers, from
# the repository's root.
#
# BENCH_VENV: the peers' virtual environment (gitignored), shared by those scripts.
BENCH_VENV=bench/.venv-optuna

# bench_venv IMPORTS PACKAGE...: makes $BENCH_VENV on first use and installs the packages (from
# PyPI) unless `python -c "IMPORTS"` already works there, so that each script finds what it needs
# in an environment another one made.
bench_venv() {
  local imports=$1
  shift
  if [[ ! -x $BENCH_VENV/bin/python ]]; then
    /usr/bin/python3 -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/pip" install -q --upgrade pip
  fi
  "$BENCH_VENV/bin/python" -c "$imports" 2>/dev/null || "$BENCH_VENV/bin/pip" install -q "$@"
}

# bench_hpo BUILD_DIR: configures BUILD_DIR on first use (Release, CPU only), builds `hpo` there
# and prints its path.
bench_hpo() {
  local build=$1
  if [[ ! -f $build/build.ninja ]]; then
    cmake -S . -B "$build" -G Ninja -DHPO_CUDA=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$build" -j2 --target hpo >/dev/null
  find "$build" -name hpo -type f -perm -u+x -path '*cli*' | head -1
}
