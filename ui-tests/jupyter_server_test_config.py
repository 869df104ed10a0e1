"""Jupyter server configuration for the Galata tests: a throwaway root dir and an empty MLP_HOME."""

import os
import shutil
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 (`c` is injected by the config loader); makes a temp root_dir

# Tests never touch the real store: each server start gets an empty one (git-ignored, kept for a
# look after a failure; MLP_UI_HOME moves it, e.g. for a second suite on another MLP_UI_PORT).
# The server and its kernels inherit MLP_HOME.
mlp_home = Path(os.environ.get("MLP_UI_HOME") or Path(__file__).parent / ".mlp-home")
shutil.rmtree(mlp_home, ignore_errors=True)
mlp_home.mkdir()
os.environ["MLP_HOME"] = str(mlp_home)

c.ServerApp.allow_root = True  # noqa: F821
c.ServerApp.port = int(os.environ.get("MLP_UI_PORT", "8899"))  # noqa: F821
if os.environ.get("MLP_UI_ROOT"):
    c.ServerApp.root_dir = os.environ["MLP_UI_ROOT"]  # noqa: F821

# Team mode (issue 16) where asked (MLP_UI_TEAM=1; run.sh runs team.spec.ts once more so): team
# admins named turn it on for the store; this server's user is not one of them, so the server
# itself refuses changes of other users' runs. Without it the server is a single seat, as the
# other specs expect.
if os.environ.get("MLP_UI_TEAM"):
    c.MlpApp.team_admins = {"carol"}  # noqa: F821
