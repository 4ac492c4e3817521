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

# bench_machine: the "- Machine: ..." line the side-by-side tables are recorded with.
bench_machine() {
  echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), Linux $(uname -r)"
}

# bench_syne_venv: bench/.venv-syne (SYNE_VENV overrides) with Syne Tune (bench/dispatch/setup_syne.sh)
# and what its GP and CQR searchers import (botorch; huggingface_hub). Says on stderr what could not
# be installed and returns 1 then; the drivers report the Syne Tune methods as not run.
bench_syne_venv() {
  local venv=${SYNE_VENV:-bench/.venv-syne}
  if ! SYNE_VENV=$venv bash bench/dispatch/setup_syne.sh >&2; then
    echo "Syne Tune could not be installed into $venv: its methods will not run" >&2
    return 1
  fi
  "$venv/bin/python" -c 'import botorch, huggingface_hub' 2>/dev/null ||
    "$venv/bin/pip" install -q botorch huggingface_hub >&2 || {
    echo "botorch could not be installed into $venv: Syne Tune's BOTorch will not run" >&2
    return 1
  }
}
