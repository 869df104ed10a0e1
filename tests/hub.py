"""A real JupyterHub on loopback for the team tests (tests/test_hub.py).

`Hub` writes a jupyterhub_config.py into a fresh folder and starts `jupyterhub` from this venv
with configurable-http-proxy from tests/hub/node_modules (`npm ci --prefix tests/hub`;
scripts/test.sh does it), the DummyAuthenticator (one password) and the
SimpleLocalProcessSpawner: every user's single-user server is `jupyterhub-singleuser` from this
venv with jupyter_mlp, in a home folder of its own, and every one is configured as the README's
"For a team" says: the same PostgreSQL store (MLP_STORE_URL in the spawner's environment), one
place for the blobs (`--MlpApp.blob_url`, or one shared MLP_HOME) and the team's admins
(`--MlpApp.team_admins`).

The test drives it as people would, through the proxy: a service token (`load_roles`) starts
servers and makes each user an API token; each user then talks to their own server
(`/user/<name>/mlp/api/...`, `/user/<name>/api/...`, kernel websockets) with their token.
Every wait is a poll with a deadline.

    python tests/hub.py      # start one (its own PostgreSQL), print its URL, stop it on Enter
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROXY = HERE / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
BIN = Path(sys.executable).parent
PASSWORD = "hub-test-pw"  # the DummyAuthenticator's one password


def missing_reason() -> str | None:
    """Why no hub can start here (None: one can)."""
    try:
        import distributed  # noqa: F401
        import jupyterhub  # noqa: F401
        import websocket  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[test]')"
    if not (BIN / "jupyterhub").exists() or not (BIN / "jupyterhub-singleuser").exists():
        return f"no jupyterhub / jupyterhub-singleuser in {BIN}"
    if not PROXY.exists():
        return f"configurable-http-proxy is not installed: npm ci --prefix {HERE / 'hub'}"
    if shutil.which("node") is None:
        return "node is not installed (configurable-http-proxy runs on it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(
    what: str,
    check: Callable[[], Any],
    deadline_s: float = 60,
    every: float = 0.1,
    log: Callable[[], str] | None = None,
) -> Any:
    """`check()` again until it returns something truthy (returned), or fail naming `what` and
    the last value (or error) seen once `deadline_s` has passed."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while True:
        try:
            last = check()
        except Exception as exc:  # noqa: BLE001 - a server still starting, a socket refused
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            tail = f"\n--- log ---\n{log()}" if log is not None else ""
            raise AssertionError(
                f"timed out after {deadline_s:g} s waiting for {what}: {last!r}{tail}"
            )
        time.sleep(every)


CONFIG = """\
# written by tests/hub.py
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///" + {folder!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {folder!r} + "/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = {folder!r} + "/jupyterhub.pid"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.ConfigurableHTTPProxy.debug = False

c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = set({users!r})

# the tests' own service: starts servers and makes each user an API token
c.JupyterHub.services = [{{"name": "mlp-tests", "api_token": {service_token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "mlp-tests",
    "scopes": ["admin:users", "admin:servers", "tokens", "read:users"],
    "services": ["mlp-tests"],
}}]

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r}
c.JupyterHub.slow_spawn_timeout = 0  # POST .../server answers at once; the tests poll
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.environment = {environment!r}
"""

# With a Dask scheduler (the README's "Shared compute with Dask"): every server submits to it, and
# its jobs report back through the proxy, to the server of the user who submitted them.
DASK_CONFIG = """
BASE_ARGS = {args!r}  # noqa


def mlp_args(spawner):
    url = f"{url}/user/{{{{spawner.user.name}}}}/mlp/api"
    spawner.args = [*BASE_ARGS, f"--MlpApp.dask_server_url={{{{url}}}}"]


c.Spawner.pre_spawn_hook = mlp_args
"""


class Hub:
    """A JupyterHub of `users` on loopback whose single-user servers share one store."""

    def __init__(
        self,
        folder: Path,
        store_url: str,
        users: Iterable[str],
        admins: Iterable[str] = (),
        *,
        blob_url: str | None = None,
        shared_home: Path | None = None,
        server_args: Iterable[str] = (),
        environment: dict[str, str] | None = None,
        dask_scheduler: str | None = None,
    ) -> None:
        """The blobs: at `blob_url` (`--MlpApp.blob_url`; each server keeps its own home), or
        in `shared_home` (MLP_HOME: one folder for every server)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.homes = self.folder / "homes"
        self.shared_home = Path(shared_home) if shared_home is not None else None
        self.store_url = store_url
        self.users = list(users)
        self.admins = sorted(admins)
        self.port, self.hub_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service_token = secrets.token_hex(24)
        self.tokens: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.folder / "jupyterhub.log"
        args = ["--ServerApp.log_level=WARN"]
        if os.geteuid() == 0:  # CI runs as root; a Jupyter server refuses to unless told
            args.append("--ServerApp.allow_root=True")
        args += [f"--MlpApp.team_admins={name}" for name in self.admins]
        args += list(server_args)
        if dask_scheduler:
            args.append(f"--MlpApp.dask_scheduler={dask_scheduler}")
        # the README's "For a team": one store (its address in the spawner's environment), one
        # place for the blobs
        env = {"MLP_STORE_URL": store_url, **(environment or {})}
        if blob_url:
            args.append(f"--MlpApp.blob_url={blob_url}")
        if self.shared_home is not None:
            env["MLP_HOME"] = str(self.shared_home)
            self.shared_home.mkdir(parents=True, exist_ok=True)
        config = CONFIG
        if dask_scheduler:
            config += DASK_CONFIG.format(args=args, url=self.url)
        (self.folder / "jupyterhub_config.py").write_text(
            config.format(
                port=self.port,
                hub_port=self.hub_port,
                proxy_api_port=self.proxy_api_port,
                folder=str(self.folder),
                proxy=str(PROXY),
                proxy_token=secrets.token_hex(24),
                password=PASSWORD,
                users=sorted(self.users),
                service_token=self.service_token,
                homes=str(self.homes),
                singleuser=str(BIN / "jupyterhub-singleuser"),
                args=args,
                environment=env,
            )  # fmt: skip
        )
        for name in self.users:
            (self.homes / name).mkdir(parents=True, exist_ok=True)

    # --- the hub ------------------------------------------------------------------------------

    def start(self, deadline_s: float = 120) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "JUPYTER"))}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "jupyterhub"), "-f", str(self.folder / "jupyterhub_config.py")],
                cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        poll("the hub's API", lambda: self._alive() and self.api("GET", "/").ok, deadline_s,
             log=self.log)  # fmt: skip

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"jupyterhub exited ({self.proc.returncode}):\n{self.log()}")
        return True

    def api(self, method: str, path: str, **kw: Any) -> Any:
        """A request to the hub's REST API with the tests' service token."""
        import requests

        headers = {"Authorization": f"token {self.service_token}", **kw.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kw
        )

    def login(self, name: str, password: str) -> int:
        """The status of a login through the hub's form (302: logged in), as a browser does it."""
        import requests

        browser = requests.Session()
        browser.get(f"{self.url}/hub/login", timeout=30)
        form = {"username": name, "password": password, "_xsrf": browser.cookies.get("_xsrf", "")}
        answer = browser.post(f"{self.url}/hub/login", data=form, allow_redirects=False, timeout=30)
        return int(answer.status_code)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-6000:]
        return ""

    def stop(self, deadline_s: float = 60) -> None:
        """SIGTERM: the hub stops the servers it spawned (cleanup_servers) and its proxy; what
        is left of its process group after the deadline is killed."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(deadline_s)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.proc = None

    # --- users and their servers --------------------------------------------------------------

    def token(self, name: str) -> str:
        """An API token of `name` (made once through the hub's API): what they reach their own
        server with."""
        if name not in self.tokens:
            made = self.api("POST", f"/users/{name}/tokens", json={"note": "mlp tests"})
            if made.status_code != 201:
                raise RuntimeError(f"no token for {name}: {made.status_code} {made.text}")
            self.tokens[name] = made.json()["token"]
        return self.tokens[name]

    def spawn(self, *names: str, deadline_s: float = 240) -> None:
        """Start the servers of `names` (all at once) and wait until the hub says each is
        ready and it answers through the proxy."""
        for name in names:
            started = self.api("POST", f"/users/{name}/server")
            if started.status_code not in (201, 202, 400):  # 400: already running
                raise RuntimeError(f"{name}'s server: {started.status_code} {started.text}")

        def ready(name: str) -> bool:
            self._alive()
            model = self.api("GET", f"/users/{name}").json()
            server = (model.get("servers") or {}).get("")
            return bool(server and server.get("ready"))

        for name in names:
            poll(f"{name}'s server", lambda n=name: ready(n), deadline_s, every=0.25,
                 log=self.log)  # fmt: skip
            user = self.user(name)
            poll(f"{name}'s /mlp/api through the proxy", lambda u=user: u.get("me").ok,
                 60, log=self.log)  # fmt: skip

    def user(self, name: str) -> UserClient:
        return UserClient(self, name)


class ServerClient:
    """Requests to one Jupyter server (`base`: its URL and base_url, no trailing slash) with an
    API token: the hub's users (UserClient) and the bench's plain servers (bench/store.py)."""

    def __init__(self, base: str, token: str, name: str) -> None:
        import requests

        self.base, self.token, self.name = base.rstrip("/"), token, name
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """`path` under the server's base URL (`mlp/api/runs`, `api/kernels`)."""
        kw.setdefault("timeout", 60)
        return self.http.request(method, f"{self.base}/{path.lstrip('/')}", **kw)

    def mlp(self, method: str, path: str, **kw: Any) -> Any:
        return self.request(method, "mlp/api/" + path.lstrip("/"), **kw)

    def get(self, path: str, **params: Any) -> Any:
        return self.mlp("GET", path, params=params)

    def json(self, path: str, **params: Any) -> Any:
        answer = self.get(path, **params)
        if not answer.ok:
            raise AssertionError(f"{self.name}: GET {path} -> {answer.status_code} {answer.text}")
        return answer.json()

    def put_file(self, path: str, content: Any) -> None:
        """Write a file into the user's server root through the contents API."""
        if isinstance(content, dict):
            model = {"type": "notebook", "format": "json", "content": content}
        else:
            model = {"type": "file", "format": "text", "content": content}
        answer = self.request("PUT", f"api/contents/{path}", json=model)
        if answer.status_code not in (200, 201):
            raise AssertionError(f"PUT {path}: {answer.status_code} {answer.text}")

    def kernel(self, notebook: str | None = None) -> KernelSocket:
        """A kernel of this user's server (a notebook session when `notebook` is given, as
        JupyterLab opens one), connected over the kernel websocket through the proxy."""
        if notebook is None:
            answer = self.request("POST", "api/kernels", json={"name": "python3"})
            kernel_id = answer.json()["id"] if answer.ok else None
        else:
            answer = self.request("POST", "api/sessions", json={
                "path": notebook, "name": notebook, "type": "notebook",
                "kernel": {"name": "python3"},
            })  # fmt: skip
            kernel_id = answer.json()["kernel"]["id"] if answer.ok else None
        if kernel_id is None:
            raise AssertionError(f"{self.name}: no kernel: {answer.status_code} {answer.text}")
        return KernelSocket(self, kernel_id)


class UserClient(ServerClient):
    """One user's requests to their own server through the hub's proxy, with their token."""

    def __init__(self, hub: Hub, name: str) -> None:
        super().__init__(f"{hub.url}/user/{name}", hub.token(name), name)
        self.hub = hub
        self.home = hub.homes / name


class KernelSocket:
    """Jupyter's kernel websocket (the JSON message form) of one kernel, as JupyterLab uses it."""

    def __init__(self, user: ServerClient, kernel_id: str) -> None:
        import websocket

        self.user, self.id = user, kernel_id
        url = f"{user.base.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels"
        self.session = uuid.uuid4().hex
        self.ws = poll(
            f"{user.name}'s kernel websocket",
            lambda: websocket.create_connection(
                f"{url}?session_id={self.session}",
                header=[f"Authorization: token {user.token}"],
                timeout=30,
            ),
            60,
        )
        self.replies: dict[str, dict[str, Any]] = {}

    def send(self, code: str, cell_id: str | None = None) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.user.name,
                       "session": self.session, "date": "", "version": "5.3"},
            "parent_header": {}, "channel": "shell",
            "metadata": {"cellId": cell_id} if cell_id else {},
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": False},
        }))  # fmt: skip
        self.replies[msg_id] = {"stdout": "", "stderr": "", "reply": None, "idle": False}
        return msg_id

    def wait(self, msg_id: str, deadline_s: float = 120) -> dict[str, Any]:
        """The execute_reply of `msg_id` once its cell is done (status idle), with its stdout
        and stderr: {status, ename, evalue, stdout, stderr}."""
        import websocket

        deadline = time.monotonic() + deadline_s
        entry = self.replies[msg_id]
        while not (entry["reply"] is not None and entry["idle"]):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.user.name}'s cell {msg_id}: no reply: {entry}")
            self.ws.settimeout(min(left, 5))
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            parent = (msg.get("parent_header") or {}).get("msg_id")
            if parent not in self.replies:
                continue
            got = self.replies[parent]
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                got[content["name"]] += content["text"]
            elif kind == "execute_reply":
                got["reply"] = content
            elif kind == "status" and content.get("execution_state") == "idle":
                got["idle"] = True
            elif kind == "error":
                got["stderr"] += f"{content['ename']}: {content['evalue']}\n"
        reply = entry["reply"]
        return {"status": reply["status"], "ename": reply.get("ename"),
                "evalue": reply.get("evalue"), "stdout": entry["stdout"], "stderr": entry["stderr"]}  # fmt: skip

    def run(self, code: str, cell_id: str | None = None, deadline_s: float = 120) -> dict[str, Any]:
        """Run one cell; fail with its error when it does not end ok."""
        result = self.wait(self.send(code, cell_id), deadline_s)
        if result["status"] != "ok":
            raise AssertionError(f"{self.user.name}'s cell failed: {result}\n{code}")
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        with contextlib.suppress(Exception):
            self.user.request("DELETE", f"api/kernels/{self.id}", timeout=30)


class Dask:
    """A Dask scheduler and one worker on loopback: the team's shared compute. The worker has a
    store folder of its own and no database address, so whatever a job records reaches the
    store only through the server it reports to; it keeps no warm kernels (two cores here)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _spawn(self, args: list[str], log: str, env: dict[str, str]) -> None:
        with open(self.folder / log, "wb") as out:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", *args], env=env, stdout=subprocess.DEVNULL, stderr=out,
                start_new_session=True, cwd=self.folder,
            ))  # fmt: skip

    def start(self, deadline_s: float = 90) -> str:
        from distributed import Client

        env = {k: v for k, v in os.environ.items() if not k.startswith("MLP_")}
        info = self.folder / "scheduler.json"
        self._spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(info)], "scheduler.log", env)  # fmt: skip
        self.address = poll("the Dask scheduler", lambda: _scheduler_address(info), deadline_s)
        worker_env = {**env, "MLP_HOME": str(self.folder / "worker-store"),
                      "MLP_SPOOL_DIR": str(self.folder / "spool"), "MLP_KERNEL_POOL": "0"}  # fmt: skip
        self._spawn(["distributed.cli.dask_worker", self.address, "--name", "w1", "--nthreads",
                     "2", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"], "worker.log",
                    worker_env)  # fmt: skip
        with Client(self.address, timeout=30, set_as_default=False) as client:
            poll("the Dask worker to join", lambda: client.scheduler_info()["workers"], deadline_s)
        return self.address

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        self.procs.clear()


if __name__ == "__main__":  # pragma: no cover - by hand
    import tempfile

    import postgres

    pg = postgres.start_server()
    folder = Path(tempfile.mkdtemp(prefix="mlp-hub-"))
    hub = Hub(folder, pg.url(pg.create_database()), ["alice", "bob", "carol"], ["carol"],
              blob_url=f"file://{folder}/blobs")  # fmt: skip
    try:
        hub.start()
        hub.spawn("alice", "bob")
        print(hub.url, {n: hub.token(n) for n in ("alice", "bob")}, flush=True)
        input("Enter stops it\n")
    finally:
        hub.stop()
        pg.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def _scheduler_address(info: Path) -> str | None:
    """The address in the scheduler's file once it is written whole (it exists a moment before
    it holds its JSON: CI run 25 read it empty)."""
    try:
        return json.loads(info.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None
