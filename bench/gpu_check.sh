#!/usr/bin/env bash
# One check for a lent GPU, in under 8 minutes, installing nothing and downloading nothing:
#   1. environment   torch, CUDA, the device
#   2. unit tests    every test file that asks torch.cuda.is_available() (tests/test_cuda.py ...),
#                    slow-marked ones included; on CUDA a skipped CUDA test counts as a failure
#   3. throughput    python bench/throughput.py --device $DEVICE (steps, evaluation, projection)
#   4. fake CIFAR    random uint8 images in CIFAR-10's python format (cifar-10-batches-py/
#                    data_batch_1..5, test_batch, batches.meta), random Inception weights, random
#                    reference statistics, and a copy of specs/cifar10.eagan that points at them
#   5. quick run     eagan run <that copy> --quick --device $DEVICE --inception-weights ...
# then one summary table (also in $OUT/summary.txt); exit 1 if a part failed.
#
# Run from anywhere, after `pip install -e '.[test]'`:
#     bash bench/gpu_check.sh                           # on the GPU machine
#     DEVICE=cpu SKIP_RUN=1 bash bench/gpu_check.sh     # a CPU smoke test of the script itself
# Settings (environment): DEVICE (cuda), OUT (/tmp/gpu_check), PYTHON (python), WIDTH_SCALE
# (1.0 on CUDA, 0.25 on CPU), TP_ARGS (more throughput.py arguments), DATA_PER_BATCH (500 images
# per CIFAR batch file), SKIP_RUN=1 (prepare the data but skip the quick run), per-part time limits
# in seconds ENV_TIMEOUT, TEST_TIMEOUT, TP_TIMEOUT, PREP_TIMEOUT, QUICK_TIMEOUT. On the CPU a quick
# run that reaches its first training stage and then hits QUICK_TIMEOUT counts as "started" (pass).
set -euo pipefail

cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpu_check}
PYTHON=${PYTHON:-python}
SKIP_RUN=${SKIP_RUN:-0}
DATA_PER_BATCH=${DATA_PER_BATCH:-500}
if [[ $DEVICE == cuda* ]]; then
  # budget on one GPU, 470 s in all at most; expected well under that
  ENV_TIMEOUT=${ENV_TIMEOUT:-30} TEST_TIMEOUT=${TEST_TIMEOUT:-120} TP_TIMEOUT=${TP_TIMEOUT:-150}
  PREP_TIMEOUT=${PREP_TIMEOUT:-40} QUICK_TIMEOUT=${QUICK_TIMEOUT:-130}
  WIDTH_SCALE=${WIDTH_SCALE:-1.0} TP_ARGS=${TP_ARGS:-"--repeats 10"}
else
  ENV_TIMEOUT=${ENV_TIMEOUT:-60} TEST_TIMEOUT=${TEST_TIMEOUT:-300} TP_TIMEOUT=${TP_TIMEOUT:-900}
  PREP_TIMEOUT=${PREP_TIMEOUT:-120} QUICK_TIMEOUT=${QUICK_TIMEOUT:-90}
  WIDTH_SCALE=${WIDTH_SCALE:-0.25} TP_ARGS=${TP_ARGS:-"--repeats 2"}
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export NO_COLOR=1 EAGAN_CACHE="$OUT/cache" PYTHONDONTWRITEBYTECODE=1
FAKE="$OUT/fake_cifar10"

NAMES=() STATES=() SECONDS_USED=() NOTES=()
FAILED=0

# part NAME LIMIT_S COMMAND...: run COMMAND under `timeout`, its output to $OUT/NAME.log (and the
# terminal), and record pass/fail and seconds. A part's own verdict can be refined afterwards.
part() {
  local name=$1 limit=$2
  shift 2
  local log="$OUT/$name.log" start rc
  echo "=== $name (limit ${limit} s): $*"
  start=$(date +%s.%N)
  set +e
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  local secs
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  local state=pass note=""
  if [[ $rc == 124 || $rc == 137 ]]; then
    state=FAIL note="timed out after ${limit} s"
  elif [[ $rc != 0 ]]; then
    state=FAIL note="exit $rc"
  fi
  NAMES+=("$name") STATES+=("$state") SECONDS_USED+=("$secs") NOTES+=("$note")
  LAST_RC=$rc
}

verdict() {  # verdict STATE NOTE: replace the last part's verdict
  STATES[-1]=$1 NOTES[-1]=$2
}

# ------------------------------------------------------------------------------ 1. environment
part environment "$ENV_TIMEOUT" "$PYTHON" - "$DEVICE" <<'EOF'
import sys, torch
dev = sys.argv[1]
print("python", sys.version.split()[0], "| torch", torch.__version__, "| CUDA build", torch.version.cuda)
print("cuda available:", torch.cuda.is_available(), "| devices:", torch.cuda.device_count())
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
if dev.startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit(f"DEVICE={dev} but torch sees no CUDA device")
    x = torch.randn(256, 256, device=dev)
    print("matmul on", dev, "ok:", float((x @ x).sum().isfinite()))
print("cpu threads:", torch.get_num_threads())
EOF

# ------------------------------------------------------------------------------ 2. unit tests
mapfile -t CUDA_TESTS < <(grep -l "torch.cuda.is_available" tests/test_*.py || true)
part unit_tests "$TEST_TIMEOUT" env EAGAN_SLOW=1 "$PYTHON" -m pytest -q -rs -p no:cacheprovider "${CUDA_TESTS[@]}"
if [[ $LAST_RC == 0 && $DEVICE == cuda* ]] && grep -q "needs a CUDA device" "$OUT/unit_tests.log"; then
  verdict FAIL "CUDA tests were skipped with DEVICE=$DEVICE (torch sees no GPU?)"
elif [[ $LAST_RC == 0 ]]; then
  verdict pass "$(grep -Eo '[0-9]+ passed.*' "$OUT/unit_tests.log" | tail -1) in ${CUDA_TESTS[*]}"
fi

# ------------------------------------------------------------------------------ 3. throughput
# shellcheck disable=SC2086  # TP_ARGS is a list of arguments
part throughput "$TP_TIMEOUT" "$PYTHON" bench/throughput.py --device "$DEVICE" --width-scale "$WIDTH_SCALE" \
  --json "$OUT/throughput.json" $TP_ARGS
if [[ $LAST_RC == 0 ]]; then
  verdict pass "$("$PYTHON" - "$OUT/throughput.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["projection"]["totals"]["fp32"]
rows = {x["phase"]: x for x in r["rows"] if x["variant"] == "fp32" and "s_per_iteration" in x}
s = lambda p: f"{rows[p]['s_per_iteration']:.3f}" if p in rows else "n/a"
print(f"s/iter: stage 1 {s('search_g')}, stage 2 {s('search_d')}; "
      + (f"search {t['search_days']:.2f} {r['setup']['device']}-days (paper 1.2)" if t else "projection n/a")
      + f", widths x{r['setup']['width_scale']}")
EOF
)"
fi

# ------------------------------------------------------------------------------ 4. fake CIFAR-10
part fake_cifar "$PREP_TIMEOUT" "$PYTHON" - "$FAKE" "$DATA_PER_BATCH" <<'EOF'
"""CIFAR-10's python batches with random pixels: pickled dicts (protocol 2, as the published
files) with "data" (N × 3072 uint8, channel-major rows of 32×32) and "labels", read back through
runtime.data; random Inception weights that --inception-weights accepts; random reference
statistics at the spec's `stats:` path; a copy of specs/cifar10.eagan whose data root is here."""
import pickle, re, sys
from pathlib import Path

import numpy as np
import torch

root, per_batch = Path(sys.argv[1]), int(sys.argv[2])
folder = root / "cifar-10-batches-py"
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
    batch = {
        "batch_label": f"fake {name} of {per_batch}",
        "labels": rng.integers(0, 10, per_batch).tolist(),
        "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
        "filenames": [f"fake_{i}_{j}.png" for j in range(per_batch)],
    }
    with open(folder / name, "wb") as f:
        pickle.dump(batch, f, protocol=2)
labels = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
with open(folder / "batches.meta", "wb") as f:
    pickle.dump({"label_names": labels, "num_cases_per_batch": per_batch, "num_vis": 3072}, f, protocol=2)

from eagan_dsl.checker import load
from runtime.data import load_training_data
from runtime.metrics import inception_v3_fid
from runtime.metrics.inception import INCEPTION_FILE, random_inception_state_dict
from runtime.metrics.stats import save_npz_stats
from runtime.metrics.frechet import ReferenceStats

text = Path("specs/cifar10.eagan").read_text()
text, n = re.subn(r'(data\s+cifar10\s*\([^)]*root:\s*)"[^"]*"', lambda m: f'{m.group(1)}"{root}"', text)
assert n == 1, "specs/cifar10.eagan: no `data cifar10(root: ...)` line to point at the fake data"
spec = root / "cifar10_fake.eagan"
spec.write_text(text)
program = load(spec)
data = load_training_data(program.data, torch.device("cpu"))
assert data.images.shape == (5 * per_batch, 3, 32, 32) and data.images.dtype == torch.uint8, data.images.shape
print(f"data: {len(data)} images {tuple(data.images.shape[1:])} through runtime.data from {folder}")

weights = root / INCEPTION_FILE  # the pytorch-fid file name; only the layout is checked
torch.save(random_inception_state_dict(0), weights)
extractor = inception_v3_fid(weights, allow_download=False)
print(f"inception: random weights accepted as {extractor.weights_id} ({weights})")

stats = program.blocks["evaluate"].get("stats")
if stats:  # the spec's reference statistics (TTUR's npz), random here
    d = extractor.feature_dim
    a = rng.standard_normal((d, 2 * d)) / np.sqrt(2 * d)
    path = spec.parent / stats
    save_npz_stats(path, ReferenceStats(rng.standard_normal(d) * 0.1, a @ a.T, {"source": "random"}))
    print(f"stats: random mu/sigma ({d}) at {path}")
(root / "inception_path").write_text(str(weights))
EOF

if [[ $LAST_RC == 0 ]]; then
  verdict pass "$((5 * DATA_PER_BATCH)) images read by runtime.data; random Inception weights and stats accepted"
fi

# ------------------------------------------------------------------------------ 5. quick run
if [[ $SKIP_RUN == 1 ]]; then
  NAMES+=(quick_run) STATES+=(skipped) SECONDS_USED+=(0) NOTES+=("SKIP_RUN=1")
elif [[ ! -f $FAKE/inception_path ]]; then
  NAMES+=(quick_run) STATES+=(FAIL) SECONDS_USED+=(0) NOTES+=("no fake CIFAR-10 (fake_cifar failed)")
else
  part quick_run "$QUICK_TIMEOUT" "$PYTHON" -m runtime.cli run "$FAKE/cifar10_fake.eagan" --quick \
    --device "$DEVICE" --out "$OUT/quick_run" --force --inception-weights "$(cat "$FAKE/inception_path")"
  started=0
  grep -q "\] warm-up" "$OUT/quick_run.log" && started=1
  if [[ $LAST_RC == 0 ]]; then
    if [[ -f $OUT/quick_run/final/metrics.json ]]; then
      verdict pass "$("$PYTHON" -c "import json,sys; m=json.load(open(sys.argv[1])); print(f\"IS {m['is']:.2f} FID {m['fid']:.1f} (random data and weights), G {m['g_params']:,} / D {m['d_params']:,} params\")" "$OUT/quick_run/final/metrics.json")"
    else
      verdict FAIL "exit 0 but no final/metrics.json"
    fi
  elif [[ ($LAST_RC == 124 || $LAST_RC == 137) && $DEVICE != cuda* && $started == 1 ]]; then
    verdict started "data loaded, training started; stopped at QUICK_TIMEOUT=${QUICK_TIMEOUT} s (CPU)"
  fi
fi

# ------------------------------------------------------------------------------ summary
for state in "${STATES[@]}"; do
  if [[ $state == FAIL ]]; then FAILED=1; fi
done
{
  echo
  echo "gpu_check summary: DEVICE=$DEVICE, logs in $OUT"
  printf '%-12s %-8s %8s  %s\n' part result seconds note
  printf '%-12s %-8s %8s  %s\n' ------------ -------- -------- ----
  for i in "${!NAMES[@]}"; do
    printf '%-12s %-8s %8s  %s\n' "${NAMES[$i]}" "${STATES[$i]}" "${SECONDS_USED[$i]}" "${NOTES[$i]}"
  done
  total=$(printf '%s\n' "${SECONDS_USED[@]}" | awk '{ s += $1 } END { printf "%.1f", s }')
  printf '%-12s %-8s %8s\n' total "$([[ $FAILED == 0 ]] && echo pass || echo FAIL)" "$total"
} | tee "$OUT/summary.txt"
exit "$FAILED"
