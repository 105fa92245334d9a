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
# The power-cut shim (tests/crashsim) is built beside the daemon it is preloaded into.
export KL_CRASHSIM=${KL_CRASHSIM:-$(dirname "$KEYLESSD")/libkl-crashsim.so}
for bin in "$KEYLESSD" "$KEYLESS_CLI" "$KL_STUB" "$KL_CRASHSIM"; do
  if [[ ! -x $bin ]]; then
    echo "run-node.sh: missing binary $bin (build the keylessd, keyless, kl-upstream-stub and kl-crashsim targets)" >&2
    exit 2
  fi
done

# scripts/bootstrap --test puts a Node.js of its own here when the system's is too old.
if [[ -x $root/.tools/node/bin/node ]]; then
  export PATH=$root/.tools/node/bin:$PATH
fi

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
# TAP explicitly: newer Node.js picks another reporter when the output is not a terminal,
# and scripts/test reads the TAP summary ("# pass", "# fail", "# skipped", "# todo").
exec node --test --test-reporter=tap --test-concurrency=2 --test-timeout=120000 "${files[@]}"
