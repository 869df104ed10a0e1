"""The small status shown by `%mlp_track`: an HTML display that the writer thread updates in place
after cells (DisplayStatus), or plain text lines where there is no kernel (scripts, terminals)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing's, without importing typing (~3 ms of a script's first run)
if TYPE_CHECKING:
    from typing import Any


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def text_line(s: dict[str, Any]) -> str:
    """The run in one line of plain text (a script's terminal, a notebook's text/plain): the
    user's names with their control characters escaped, as the CLI shows them."""
    from ..model import terminal_text as t

    parts = [f"jupyter-mlp run {s['id']}"]
    if s.get("name"):
        parts.append(f"'{t(s['name'], 200)}'")
    project = f"project {t(s['project'], 200)}, " if s.get("project") else ""
    parts.append(f"[{s['status']}] {project}{_cells(s)}, {_elapsed(s['elapsed'])}")
    if s["metrics"]:
        shown = list(s["metrics"].items())[-6:]
        parts.append("| " + ", ".join(f"{t(k, 60)}={_fmt(v)}" for k, v in shown))
    if s.get("gpu"):
        parts.append("| " + _gpu_text(s["gpu"]))
    if s.get("failing"):  # a "[finished]" that only this process knows of says so
        parts.append("| not in the store yet (kept in a spool)")
    return " ".join(parts)


def _cells(s: dict[str, Any]) -> str:
    failed = s.get("failed_cells")
    return f"{s['cells']} cells" + (f" ({failed} failed)" if failed else "")


def _gpu_text(gpu: dict[str, Any]) -> str:
    out = []
    for index, g in gpu.items():
        util = g.get("util")
        used, total = g.get("mem_used"), g.get("mem_total")
        mem = f"{used / 2**30:.1f}/{total / 2**30:.0f} GiB" if used is not None and total else "?"
        out.append(f"GPU{index} {'?' if util is None else f'{util:.0f}%'} {mem}")
    return ", ".join(out)


def _escape(text: str) -> str:
    """html.escape without importing html (its entity table costs kernel start-up time)."""
    return (
        str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&quot;").replace("'", "&#x27;")
    )  # fmt: skip


def html_box(s: dict[str, Any]) -> str:
    e = _escape
    color = {
        "running": "var(--jp-brand-color1, #1976d2)",
        "finished": "var(--jp-success-color1, #388e3c)",
    }
    status_color = color.get(s["status"], "var(--jp-error-color1, #d32f2f)")
    rows = [
        f"<b>jupyter-mlp</b> run <code>{e(s['id'])}</code>"
        + (f" <b>{e(s['name'])}</b>" if s.get("name") else "")
        + f" · <span style='color:{status_color}'>{e(s['status'])}</span>"
        + (f" · project {e(s['project'])}" if s.get("project") else "")
        + f" · {e(_cells(s))} · {_elapsed(s['elapsed'])}"
    ]
    if s["metrics"]:
        shown = list(s["metrics"].items())[-8:]
        rows.append(" · ".join(f"{e(k)} <b>{e(_fmt(v))}</b>" for k, v in shown))
    if s.get("gpu"):
        rows.append(e(_gpu_text(s["gpu"])))
    if s.get("failing"):
        rows.append(
            "<span style='color:var(--jp-warn-color1, #f57c00)'>the store cannot be written "
            "now: records are kept in a spool on disk and written when it can</span>"
        )
    return (
        "<div class='jp-mlp-status' style='font-size:12px;line-height:1.5'>"
        + "<br>".join(rows)
        + "</div>"
    )


class TextStatus:
    def show(self, session: Any) -> None:
        print(text_line(session.summary()) + f" -> {session.summary()['where']}", flush=True)

    def refresh(self, session: Any) -> None:
        pass

    def close(self, session: Any) -> None:
        print(text_line(session.summary()), flush=True)


class DisplayStatus:
    """An HTML output that the writer thread updates in place (update_display_data).

    Not an ipywidget, on purpose: importing ipywidgets costs ~80 ms of kernel start-up here,
    a widget's state is gone when the notebook is reopened ("model not found"), and papermill
    cannot render one. A display with an id updates live in JupyterLab, Notebook 7 and VS Code,
    its last state is saved with the notebook, and papermill/nbclient apply the updates too."""

    def __init__(self) -> None:
        self.display_id = os.urandom(8).hex()

    def _bundle(self, session: Any) -> dict[str, str]:
        s = session.summary()
        return {"text/html": html_box(s), "text/plain": text_line(s)}

    def show(self, session: Any) -> None:
        from IPython.display import display

        display(self._bundle(session), raw=True, display_id=self.display_id)

    def refresh(self, session: Any) -> None:
        from IPython.display import update_display

        update_display(self._bundle(session), raw=True, display_id=self.display_id)

    close = refresh


def make_status(shell: Any) -> TextStatus | DisplayStatus:
    """A live display in a kernel; text lines in a terminal IPython or a script."""
    if shell is not None and getattr(shell, "kernel", None) is not None:
        return DisplayStatus()
    return TextStatus()
