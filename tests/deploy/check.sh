#!/usr/bin/env bash
# Checks the files under deploy/ with the tools that read them (CTest Deploy.Files).
#   tests/deploy/check.sh HPO_BINARY
# - systemd units: `systemd-analyze verify` with the hpo binary at the path the units name
#   (a temporary root), so a typo in a directive or a missing ExecStart program fails;
# - the Slurm batch script: `bash -n`, its #SBATCH lines parsed by `sbatch --test-only` when a
#   Slurm controller answers (skipped otherwise, with a line saying so); CTest Deploy.Slurm
#   (tests/deploy/slurm_test.sh) runs it under a real, private Slurm;
# - the Containerfile: every runtime package it installs exists in this Debian release, and the
#   binary's shared libraries all come from packages it installs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
hpo="${1:?usage: check.sh HPO_BINARY}"
fail=0
say() { echo "deploy-check: $*"; }

# systemd units
if command -v systemd-analyze >/dev/null; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/usr/local/bin" "$root/usr/bin" "$root/etc/systemd/system"
  ln -s usr/bin "$root/bin"
  cp "$hpo" "$root/usr/local/bin/hpo"
  cp /bin/kill "$root/usr/bin/kill"
  for unit in "$here"/deploy/systemd/*.service; do
    cp "$unit" "$root/etc/systemd/system/"
    out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --root="$root" "$root/etc/systemd/system/$(basename "$unit")" 2>&1 || true)
    # The empty root has no targets (sysinit.target ...): only what is wrong in our file counts.
    ours=$(grep -E "Unknown|[Ii]nvalid|not executable|Failed to parse|[Mm]issing|not absolute|bad" <<<"$out" || true)
    if [[ -n "$ours" ]]; then say "FAIL $(basename "$unit"): $ours"; fail=1; else say "ok $(basename "$unit")"; fi
  done
else
  say "skip systemd units: systemd-analyze is not installed"
fi

# Slurm batch script
bash -n "$here/deploy/slurm/hpo-workers.sbatch" && say "ok hpo-workers.sbatch (bash -n)" || { say "FAIL hpo-workers.sbatch: bash -n"; fail=1; }
if command -v sbatch >/dev/null && timeout 10 scontrol ping >/dev/null 2>&1; then
  if timeout 20 sbatch --test-only "$here/deploy/slurm/hpo-workers.sbatch" tcp://127.0.0.1:7700 /tmp >/dev/null 2>&1; then
    say "ok hpo-workers.sbatch (sbatch --test-only)"
  else
    say "FAIL hpo-workers.sbatch: sbatch --test-only refused it"; fail=1
  fi
else
  say "skip sbatch --test-only: no Slurm controller answers here"
fi

# Containerfile: runtime packages exist, and cover the binary's libraries.
pkgs=$(awk '/apt-get install/,/rm -rf/' "$here/deploy/container/Containerfile" | tr ' \\' '\n\n' |
       grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|update|and|y|no|recommends|lists|var|lib|apt)$' | sort -u)
for p in $pkgs; do
  if ! apt-cache show "$p" >/dev/null 2>&1; then say "FAIL Containerfile: no package $p in this release"; fail=1; fi
done
# The libraries the binary links directly (its NEEDED entries) must come from listed packages or
# from the ones every Debian image has.
needed=$(readelf -d "$hpo" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | while read -r lib; do
  f=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
  [[ -n "$f" ]] && { dpkg -S "$(readlink -f "$f")" 2>/dev/null || dpkg -S "$f" 2>/dev/null || true; }
done | cut -d: -f1 | sort -u)
for p in $needed; do
  grep -qx "$p" <<<"$pkgs" && continue
  # In every Debian image (apt itself needs them); sanitizer runtimes only in sanitizer builds.
  [[ " libc6 libgcc-s1 libstdc++6 " == *" $p "* ]] && continue
  [[ "$p" == libasan* || "$p" == libubsan* || "$p" == libtsan* ]] && continue
  say "FAIL Containerfile: the binary links a library of $p, which the image does not install"; fail=1
done
[[ $fail == 0 ]] && say "ok Containerfile runtime packages"

# Kubernetes manifests: schemas, wiring, and their command lines run (tests/deploy/k8s_check.py).
validator="${HPO_SDK_VENV:-$here/tests/.venv-sdk}/bin/kubernetes-validate"
[[ -x "$validator" ]] || validator=""
if python3 -c "import yaml" 2>/dev/null; then
  python3 "$here/tests/deploy/k8s_check.py" "$hpo" $validator || fail=1
else
  say "FAIL Kubernetes manifests: python3 cannot import yaml (scripts/install-deps.sh --test installs python3-yaml)"; fail=1
fi
exit $fail
