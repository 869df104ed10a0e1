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
# npm ci wipes node_modules (a minute here): skip it while the lock file is the one installed.
stamp=node_modules/.mlp-lock.sha256
if [ -f package-lock.json ]; then
  if ! sha256sum --status -c "$stamp" 2>/dev/null; then
    npm ci
    sha256sum package-lock.json >"$stamp"
  fi
else
  npm install
fi

if [ $# -eq 0 ]; then
  npx playwright test
  # The team spec once more on a server in team mode: the server's own refusals (see
  # jupyter_server_test_config.py). With arguments: MLP_UI_TEAM=1 bash run.sh tests/team.spec.ts
  MLP_UI_TEAM=1 npx playwright test tests/team.spec.ts
else
  exec npx playwright test "$@"
fi
