#!/usr/bin/env bash
# Install what the tests need, run the static checks (ruff, mypy, the lab extension's npm lint
# scripts; strict tsc runs in its build) and every test: pytest (real kernels, papermill, the
# Jupyter server, the store on SQLite and on PostgreSQL), then the Galata UI tests in Debian's
# Chromium. Works on a fresh Debian machine as root (it apt-installs chromium and postgresql) or
# as a user who already has chromium. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt_install chromium
  else
    echo "test.sh: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH" >&2
    exit 1
  fi
fi

# The store's tests run on PostgreSQL too: a server of Debian's package, started by the tests
# themselves (tests/postgres.py; as the user nobody when root). Without it, and not root, those
# tests are skipped with the reason.
if ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null && [ -z "${MLP_PG_BIN:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt_install postgresql
  else
    echo "test.sh: no PostgreSQL (apt-get install postgresql): its store tests are skipped" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install -q --upgrade pip
# A stale build of the lab extension would be taken as is (skip-if-exists): build it afresh.
rm -rf jupyter_mlp/labextension
python -m pip install -q -e ".[test]"
python -c "import jupyter_mlp, jupyter_mlp.cli" # fail fast when the install did not work
extensions=$(jupyter labextension list 2>&1)
if ! grep -q "jupyter-mlp.*enabled.*OK" <<<"$extensions"; then
  echo "test.sh: the jupyter-mlp lab extension is not installed and enabled:" >&2
  echo "$extensions" >&2
  exit 1
fi

# tests/test_hub.py starts a real JupyterHub (jupyterhub comes with the test extra); its proxy
# is the npm package configurable-http-proxy, pinned by tests/hub/package-lock.json.
npm ci --prefix tests/hub --no-audit --no-fund --loglevel=error >/dev/null

# Static checks before the tests; any failure ends the script (set -e). The strict TypeScript
# compile (tsconfig.json "strict": true) already ran in the extension build of the install above.
check() {
  echo "== test.sh: $* ==" >&2
  "$@"
}
python_sources=(jupyter_mlp tests bench ui-tests/*.py)
check ruff check "${python_sources[@]}"
check ruff format --check "${python_sources[@]}"
check mypy jupyter_mlp # the settings, strict ones for the typed core, are in pyproject.toml
npm_scripts=$(npm run)
if grep -qE '^  lint:check$' <<<"$npm_scripts"; then
  check npm run --silent lint:check # eslint (and prettier) over the lab extension
else
  echo "== test.sh: no npm script lint:check yet: eslint not run ==" >&2
fi
if grep -qE '^  format:check$' <<<"$npm_scripts"; then
  check npm run --silent format:check # prettier --check
fi

python -m pytest -q -p no:cacheprovider "$@"
bash ui-tests/run.sh
