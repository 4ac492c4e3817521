#!/usr/bin/env bash
# Installs the Debian 12 packages hpo builds and tests with. Idempotent: packages already
# present are skipped, and apt is not touched at all when nothing is missing.
# Usage: scripts/install-deps.sh [--test] [--examples]
#   --test      adds the tools the test suite needs (clang and its libFuzzer runtime, python3,
#               scikit-learn for the test that runs the quickstart job, boto3 and the aws CLI
#               for the AWS-client conformance test, Ceph radosgw for the S3 tests against a
#               real SigV4-checking S3, iproute2 for the network-isolation test, and podman
#               with runc and a static busybox for the container-mode tests, which import their
#               test image from a directory tree: no registry is needed), and headless Chromium
#               for the dashboard test, and Slurm (slurm-wlm) with munge for the test that runs
#               deploy/slurm/hpo-workers.sbatch under a private slurmctld/slurmd (Deploy.Slurm);
#               then the SageMaker Python SDK v2 (`sagemaker==2.257.7`, from PyPI) in a virtual
#               environment at tests/.venv-sdk (HPO_SDK_VENV overrides) for the SDK test
#               (tests/integration/sagemaker_sdk_test.py), with kubernetes-validate for the
#               check of deploy/kubernetes; and the SDK v3 (`sagemaker-train==1.27.0` with its
#               sagemaker-core) at tests/.venv-sdk3 (HPO_SDK3_VENV overrides) for
#               tests/integration/sagemaker_sdk_v3_test.py; each kept when it already has them
#   --examples  adds what the example trainers need (Debian's python3 and scikit-learn)
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libeigen3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libyaml-cpp-dev nlohmann-json3-dev libre2-dev
  libsqlite3-dev libcli11-dev libcurl4-openssl-dev libcpp-httplib-dev libssl-dev zlib1g-dev
)
test_pkgs=(clang libclang-rt-14-dev python3 python3-venv python3-yaml python3-sklearn python3-boto3 awscli
  ceph-mon ceph-osd radosgw ceph-common curl iproute2 systemd podman runc busybox-static chromium
  slurm-wlm munge)
example_pkgs=(python3 python3-sklearn)

want=("${build_pkgs[@]}")
sdk_venv=""
sdk3_venv=""
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_pkgs[@]}")
            sdk_venv="${HPO_SDK_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/.venv-sdk}"
            sdk3_venv="${HPO_SDK3_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/.venv-sdk3}" ;;
    --examples) want+=("${example_pkgs[@]}") ;;
    *) echo "install-deps: unknown argument '$arg' (use --test and/or --examples)" >&2; exit 2 ;;
  esac
done

# The SageMaker Python SDK v2 for tests/integration/sagemaker_sdk_test.py: not packaged by Debian,
# so a virtual environment of its own, from PyPI. Left alone when it already imports sagemaker 2.x.
install_sdk_venv() {
  [[ -n "$sdk_venv" ]] || return 0
  # Pinned: a new SDK release changes what it sends and reads; moving to one is a deliberate change.
  local version=2.257.7
  local check="import sagemaker, sys; sys.exit(0 if sagemaker.__version__ == '$version' else 1)"
  # kubernetes-validate (its schemas bundled: no cluster needed) checks deploy/kubernetes.
  local k8s_validate=1.37.0
  check="import kubernetes_validate; $check"
  if [[ -x "$sdk_venv/bin/python" ]] && SAGEMAKER_SUPPRESS_V2_WARNING=1 "$sdk_venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "install-deps: SageMaker Python SDK $version present in $sdk_venv"
    return 0
  fi
  echo "install-deps: installing the SageMaker Python SDK $version (from PyPI) into $sdk_venv"
  /usr/bin/python3 -m venv "$sdk_venv"
  "$sdk_venv/bin/python" -m pip install -q --disable-pip-version-check --no-input "sagemaker==$version" \
    "kubernetes-validate==$k8s_validate"
  SAGEMAKER_SUPPRESS_V2_WARNING=1 "$sdk_venv/bin/python" -c "$check" >/dev/null 2>&1 || {
    echo "install-deps: $sdk_venv does not import sagemaker $version after pip install" >&2; exit 1; }
}

# The SageMaker Python SDK v3 (ModelTrainer, sagemaker-core's typed shapes) for
# tests/integration/sagemaker_sdk_v3_test.py, in its own virtual environment: v2 and v3 are both
# the `sagemaker` package and cannot share one.
install_sdk3_venv() {
  [[ -n "$sdk3_venv" ]] || return 0
  local version=1.27.0  # sagemaker-train; pinned like v2's
  local check="import importlib.metadata as m, sys; import sagemaker.train.tuner; sys.exit(0 if m.version('sagemaker-train') == '$version' else 1)"
  if [[ -x "$sdk3_venv/bin/python" ]] && "$sdk3_venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "install-deps: SageMaker Python SDK v3 (sagemaker-train $version) present in $sdk3_venv"
    return 0
  fi
  echo "install-deps: installing the SageMaker Python SDK v3 (sagemaker-train $version, from PyPI) into $sdk3_venv"
  /usr/bin/python3 -m venv "$sdk3_venv"
  "$sdk3_venv/bin/python" -m pip install -q --disable-pip-version-check --no-input "sagemaker-train==$version"
  "$sdk3_venv/bin/python" -c "$check" >/dev/null 2>&1 || {
    echo "install-deps: $sdk3_venv does not import sagemaker-train $version after pip install" >&2; exit 1; }
}

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  install_sdk_venv
  install_sdk3_venv
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_sdk_venv
install_sdk3_venv
