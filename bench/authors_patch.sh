#!/usr/bin/env bash
# Make a checkout of the authors' code (github glambrechts/warmup) run beside this project
# (docs/comparison.md). Three changes, each made only if still needed, so running it again is
# harmless:
#   1. wandb.py, a stand-in for wandb whose init, log and summary do nothing (their scripts
#      import wandb only to log; bench/bench.py --authors puts the same kind of stand-in in
#      sys.modules instead, so the bench needs neither change);
#   2. np.long -> np.int64 in datasets.py (numpy removed np.long; only their MNIST loader
#      uses it);
#   3. MNIST where their loader reads it (mnist/*.gz under the folder their scripts run from),
#      gzipped from this project's verified files (make data; MNIST_DIR, default data/mnist),
#      so that it downloads nothing: their loader fetches from MNIST's own site otherwise,
#      which machines behind a package mirror cannot reach.
# Usage: bench/authors_patch.sh PATH/TO/CHECKOUT
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 PATH/TO/CHECKOUT   (a checkout of github glambrechts/warmup)" >&2
  exit 2
fi
dir=$1
if [ ! -f "$dir/models_pytorch/models.py" ] || [ ! -f "$dir/datasets.py" ]; then
  echo "error: $dir: no models_pytorch/models.py and datasets.py there; give a checkout of" \
       "github glambrechts/warmup" >&2
  exit 1
fi

# 1. the wandb stand-in, found first on sys.path when their scripts run from their folder
stub=$dir/wandb.py
if [ -e "$stub" ]; then
  echo "wandb.py: already there, left as it is ($stub)"
else
  cat > "$stub" <<'EOF'
"""Stand-in for wandb (written by bench/authors_patch.sh): init, log and summary do nothing."""
import os
import time
import types

summary = {}  # wandb.summary[...] = ...: kept here, sent nowhere


def log(*args, **kwargs):
    """Logs nothing."""


def init(*args, **kwargs):
    """A run with what their scripts read: an id (for the weights' file names) and a summary."""
    run_id = f"local-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return types.SimpleNamespace(id=run_id, summary=summary, log=log, finish=lambda *a, **k: None)
EOF
  echo "wandb.py: written ($stub): init, log and summary do nothing"
fi

# 2. np.long (removed from numpy) -> np.int64, leaving names such as np.longlong alone
datasets=$dir/datasets.py
count=$(grep -c 'np\.long\([^_[:alnum:]]\|$\)' "$datasets" || true)
if [ "$count" -eq 0 ]; then
  echo "datasets.py: no np.long left, nothing to change ($datasets)"
else
  tmp=$(mktemp "$datasets.XXXXXX")
  sed -e 's/np\.long\([^_[:alnum:]]\)/np.int64\1/g' -e 's/np\.long$/np.int64/' \
      "$datasets" > "$tmp"
  cat "$tmp" > "$datasets"  # in place, keeping the file's mode
  rm -f "$tmp"
  echo "datasets.py: np.long -> np.int64 on $count line(s) ($datasets)"
fi

# 3. MNIST's four files, gzipped, where their sequential_mnist looks first (mnist/ under the
#    folder their scripts run from: run them from the checkout)
mnist=${MNIST_DIR:-data/mnist}
names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
if [ ! -f "$mnist/${names[0]}" ]; then
  echo "mnist/: $mnist holds no MNIST files; run \`make data\` (or set MNIST_DIR) for their MNIST" \
       "benchmarks, which otherwise download from MNIST's site"
else
  mkdir -p "$dir/mnist"
  for name in "${names[@]}"; do
    if [ -e "$dir/mnist/$name.gz" ]; then
      continue
    fi
    if [ ! -f "$mnist/$name" ]; then
      echo "error: $mnist/$name missing: run \`make data\`" >&2
      exit 1
    fi
    gzip -c -n "$mnist/$name" > "$dir/mnist/$name.gz.part"
    mv "$dir/mnist/$name.gz.part" "$dir/mnist/$name.gz"
  done
  echo "mnist/: the four files of $mnist, gzipped, in $dir/mnist (their loader reads them there)"
fi
