#!/usr/bin/env bash
# Runs the Node suites (harness self-test, integration, hostile, interop) against built
# binaries. Usage: tests/run-node.sh [BUILD_DIR] [test files...]
#   BUILD_DIR defaults to $KL_BUILD_DIR, else <repo>/build; KEYLESSD, KEYLESS_CLI and
#   KL_STUB override the individual binaries (the sanitizer run points them at its build).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-${KL_BUILD_DIR:-$root/build}}
build=$(cd "$build" && pwd)
shift || true

export KL_BUILD_DIR=$build
export KEYLESSD=${KEYLESSD:-$build/keylessd}
export KEYLESS_CLI=${KEYLESS_CLI:-$build/keyless}
export KL_STUB=${KL_STUB:-$build/kl-upstream-stub}
for bin in "$KEYLESSD" "$KEYLESS_CLI" "$KL_STUB"; do
  if [[ ! -x $bin ]]; then
    echo "run-node.sh: missing binary $bin (build the keylessd, keyless and kl-upstream-stub targets)" >&2
    exit 2
  fi
done

# The pinned clients (package-lock.json); installed once, offline after that.
if [[ ! -f $here/node_modules/openai/package.json ]] ||
   ! (cd "$here" && npm ls --omit=dev >/dev/null 2>&1); then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

cd "$here"
if [[ $# -gt 0 ]]; then
  files=("$@")
else
  files=(lib/*.test.mjs integration/*.test.mjs hostile/*.test.mjs interop/*.test.mjs)
fi
# Two files at a time; one test may take at most 2 minutes (sanitizer builds included).
exec node --test --test-concurrency=2 --test-timeout=120000 "${files[@]}"
