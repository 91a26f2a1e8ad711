#!/usr/bin/env bash
# Install torch into the active Python environment as a CPU build, or stop before pip downloads
# a CUDA one. scripts/setup.sh runs it first; run it yourself before `pip install -e .`.
#
# Why: PyPI's Linux torch wheels are CUDA builds (several GB with their nvidia-* packages), and a
# plain resolve of carbs' dependencies takes one, even on a machine without a GPU. So this script
# first asks pip which files it would install (a dry run: metadata only, nothing downloaded), and
# installs torch only when that plan is a CPU build, trying in turn:
#   1. the sources pip is configured with (a local CPU wheel in find-links, a mirror);
#   2. $CARBS_TORCH_INDEX, by default PyTorch's CPU index https://download.pytorch.org/whl/cpu.
# If neither offers a CPU build it fails, saying what pip would have taken and how to choose.
# A torch already installed is kept if it is a CPU build (and refused if it is not).
#   CARBS_TORCH=cuda        accept a CUDA build (a GPU machine): plain `pip install`
#   CARBS_TORCH_SPEC=...    the requirement (default torch==2.13.0)
#   CARBS_TORCH_INDEX=URL   where a CPU build lies, for step 2
set -euo pipefail
SPEC=${CARBS_TORCH_SPEC:-torch==2.13.0}
INDEX=${CARBS_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
MODE=${CARBS_TORCH:-cpu}

pip_install() {  # pip install, quiet, without the notices of this machine's unused mirror paths
  python -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}

# plan ARGS...: prints "cpu VERSION" or "cuda VERSION" for the torch `pip install ARGS` would
# install, or "none -" when pip finds none there.
plan() {
  local report
  report=$(mktemp)
  if ! python -m pip install -q --disable-pip-version-check --dry-run --ignore-installed \
      --timeout 20 --retries 1 --report "$report" "$@" >/dev/null 2>&1; then
    rm -f "$report"
    echo "none -"
    return
  fi
  python - "$report" <<'EOF'
import json
import sys

items = [i["metadata"] for i in json.load(open(sys.argv[1]))["install"]]
names = [m["name"].lower().replace("_", "-") for m in items]
torch = next(m["version"] for m in items if m["name"].lower() == "torch")
local = torch.partition("+")[2]
gpu = local.startswith(("cu", "rocm")) or any(
    n.startswith(("nvidia-", "cuda-", "pytorch-triton")) or n == "triton" for n in names
)
print("cuda" if gpu else "cpu", torch)
EOF
  rm -f "$report"
}

if have=$(python -c 'import torch; print(torch.__version__, torch.version.cuda or "")' 2>/dev/null); then
  read -r version cuda <<<"$have"
  if [ -n "${cuda:-}" ] && [ "$MODE" != cuda ]; then
    echo "error: this environment has torch $version, a CUDA $cuda build; for a CPU one, start" \
      "from a fresh environment (rm -r .venv), or keep it with CARBS_TORCH=cuda" >&2
    exit 1
  fi
  echo "torch $version (${cuda:+CUDA $cuda}${cuda:-CPU} build) is installed: kept"
  exit 0
fi

if [ "$MODE" != cuda ] && ! python -m pip install --help 2>/dev/null | grep -q -- "--report"; then
  echo "error: this pip cannot plan an install (--dry-run --report need pip >= 22.2);" \
    "upgrade it first: python -m pip install -U pip" >&2
  exit 1
fi

if [ "$MODE" = cuda ]; then
  echo "installing $SPEC as pip resolves it (CARBS_TORCH=cuda: a CUDA build is accepted)"
  pip_install "$SPEC"
  exit 0
fi

describe() {  # KIND VERSION -> words for a message
  case $1 in
    cuda) echo "torch $2 as a CUDA build" ;;
    cpu) echo "torch $2 as a CPU build" ;;
    *) echo "no installable torch" ;;
  esac
}

read -r kind version <<<"$(plan "$SPEC")"
if [ "$kind" = cpu ]; then
  echo "installing torch $version, a CPU build, from pip's configured sources"
  pip_install "$SPEC"
else
  configured=$(describe "$kind" "$version")
  read -r kind version <<<"$(plan --index-url "$INDEX" "$SPEC")"
  if [ "$kind" != cpu ]; then
    echo "error: no CPU build of $SPEC: pip's configured sources offer $configured, and" \
      "$INDEX (with them) offers $(describe "$kind" "$version"); nothing was installed." \
      "Set CARBS_TORCH_INDEX to an index with a CPU build (e.g. a mirror of" \
      "https://download.pytorch.org/whl/cpu), or CARBS_TORCH=cuda to take the CUDA build" \
      "(several GB; for a GPU machine)" >&2
    exit 1
  fi
  echo "installing torch $version, a CPU build, from $INDEX"
  pip_install --index-url "$INDEX" "$SPEC"
fi
python -W ignore -c 'import sys, torch; sys.exit(torch.version.cuda is not None)' || {
  echo "error: the torch just installed is a CUDA build after all; report this" >&2
  exit 1
}
