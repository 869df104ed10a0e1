"""A real PostgreSQL server for the tests, from Debian's `postgresql` package.

`PgServer.start()` runs `initdb` into a fresh folder and `pg_ctl start` on a free loopback port
(its socket in that folder too). PostgreSQL refuses to run as root, so under root (CI) both run
as the unprivileged user `nobody` (runuser), who owns the folder. Passwords are checked
(scram-sha-256) so that refused credentials can be tested; the server trades durability for
speed (fsync off), which a clean stop (pg_ctl stop -m fast) does not need.

    python tests/postgres.py     # start one, print its URL, stop it on Enter (to try things)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

USER = "mlp"
PASSWORD = "s3cret-pw"  # a test server's; the tests check that no message shows it
RUN_AS = "nobody"  # under root: PostgreSQL will not run as root


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries ($MLP_PG_BIN wins), None when there are none."""
    env = os.environ.get("MLP_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "pg_ctl").exists() else None
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0)
    )
    for folder in reversed(found):
        if (Path(folder) / "pg_ctl").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_reason() -> str | None:
    """Why no server can start here (None: one can)."""
    if bin_dir() is None:
        return (
            "PostgreSQL is not installed (apt-get install postgresql; scripts/test.sh does it "
            "as root), or set MLP_PG_BIN to its bin folder"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without `runuser` to start PostgreSQL as an unprivileged user"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self) -> None:
        bins = bin_dir()
        if bins is None:
            raise RuntimeError(missing_reason() or "no PostgreSQL")
        self.bins = bins
        self.folder = Path(tempfile.mkdtemp(prefix="mlp-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    # --- the server -------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        cmd = [str(self.bins / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.folder,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr}")
        return done.stdout + done.stderr

    def init(self) -> None:
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_root:
            import pwd

            entry = pwd.getpwnam(RUN_AS)
            os.chmod(self.folder, 0o700)
            for path in (self.folder, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8",
            "--locale=C", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
        )  # fmt: skip
        pwfile.unlink()

    def start(self, deadline_s: float = 60) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -h 127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB "
            "-c log_min_messages=warning"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"),
                  "-w", "-t", str(int(deadline_s)), "start")  # fmt: skip
        self.wait_ready(deadline_s)

    def wait_ready(self, deadline_s: float = 60) -> None:
        """Poll with a deadline until the server takes connections."""
        import psycopg

        deadline = time.monotonic() + deadline_s
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {exc}\n{self.log()}") from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        out = self._run("pg_ctl", "-D", str(self.data), "status", check=False)
        return "server is running" in out

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "log").read_text()[-4000:]
        return ""

    def cleanup(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- databases --------------------------------------------------------------------------

    def url(self, database: str, password: str = PASSWORD, user: str = USER) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.admin(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_server() -> PgServer:
    server = PgServer()
    try:
        server.init()
        server.start()
    except BaseException:
        server.cleanup()
        raise
    return server


if __name__ == "__main__":  # pragma: no cover - by hand
    srv = start_server()
    db = srv.create_database()
    print(srv.url(db), flush=True)
    try:
        input("Enter stops it\n")
    finally:
        srv.cleanup()
