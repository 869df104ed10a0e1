#!/usr/bin/env bash
# Run the Galata UI tests. Expects the Python environment with jupyter-mlp installed to be first on
# PATH (its `jupyter` starts the test server) and Chromium at /usr/bin/chromium or $CHROMIUM_PATH.
# Extra arguments go to `playwright test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v jupyter >/dev/null; then
  echo "run.sh: no 'jupyter' on PATH; activate the environment where jupyter-mlp is installed" >&2
  exit 1
fi

# Playwright's own browsers cannot be downloaded here; the tests use the system Chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -f package-lock.json ]; then
  npm ci
else
  npm install
fi

exec npx playwright test "$@"
