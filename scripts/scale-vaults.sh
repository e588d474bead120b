#!/usr/bin/env bash
# Builds the vaults of the read-at-any-size measurements (docs/performance.md,
# "Reading at any size"): 1, 28 and 137 copies of the Apple Health export
# in ../shared/testdata (about 11k, 308k and 1.5M samples) plus two Synthea
# bundles (about 650 clinical records), each imported with phr import under
# /usr/bin/time -v. Opt-in: never run by the test suite or CI; the files
# are hundreds of megabytes.
#
#   scripts/scale-vaults.sh PHR_BINARY OUT_DIR [COPIES...]
#
# OUT_DIR gets ah-N.xml (made once by cmd/phr-scale), cfg/ (the device
# identity), vault-N.phr, import-N.time (the time -v output) and
# stats-N.txt (where the file's bytes go: phr-scale stats).
set -euo pipefail
phr=$(realpath "$1"); out=$(realpath -m "$2"); shift 2
copies=("$@"); [ ${#copies[@]} -gt 0 ] || copies=(1 28 137)
repo=$(cd "$(dirname "$0")/.." && pwd)
synthea=$repo/../shared/testdata/fhir/synthea-r4
mkdir -p "$out"
export PHR_CONFIG_DIR=$out/cfg
for n in "${copies[@]}"; do
  xml=$out/ah-$n.xml
  [ -f "$xml" ] || (cd "$repo" && go run ./cmd/phr-scale export -copies "$n" -o "$xml")
  export PHR_VAULT=$out/vault-$n.phr
  rm -f "$PHR_VAULT"
  PHR_PASSPHRASE=scale-measurements "$phr" init --name "Scale Person" --birth-date 1980-01-01 >/dev/null
  echo "== $n copies: $(uptime)"
  /usr/bin/time -v "$phr" import --accept-patient-mismatch --json "$xml" >"$out/import-$n.json" 2>"$out/import-$n.time"
  "$phr" import --accept-patient-mismatch "$synthea"/Jorge_Brekke_*.json "$synthea"/Reyna_Ziemann_*.json >/dev/null
  grep -E "Elapsed|Maximum resident|File system outputs" "$out/import-$n.time"
  ls -l "$PHR_VAULT"
  (cd "$repo" && go run ./cmd/phr-scale stats "$PHR_VAULT") >"$out/stats-$n.txt"
done
