"""The small status shown by `%mlp_track`: an ipywidgets HTML box that the writer thread refreshes
after cells, or plain text lines where there is no widget frontend (papermill jobs, terminals)."""

from __future__ import annotations

import html
import os
import sys
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
    parts = [f"jupyter-mlp run {s['id']}"]
    if s.get("name"):
        parts.append(f"'{s['name']}'")
    parts.append(f"[{s['status']}] project {s['project']}, {s['cells']} cells, {_elapsed(s['elapsed'])}")
    if s["metrics"]:
        shown = list(s["metrics"].items())[-6:]
        parts.append("| " + ", ".join(f"{k}={_fmt(v)}" for k, v in shown))
    if s.get("gpu"):
        parts.append("| " + _gpu_text(s["gpu"]))
    return " ".join(parts)


def _gpu_text(gpu: dict[str, Any]) -> str:
    out = []
    for index, g in gpu.items():
        util = g.get("util")
        used, total = g.get("mem_used"), g.get("mem_total")
        mem = f"{used / 2**30:.1f}/{total / 2**30:.0f} GiB" if used is not None and total else "?"
        out.append(f"GPU{index} {'?' if util is None else f'{util:.0f}%'} {mem}")
    return ", ".join(out)


def html_box(s: dict[str, Any]) -> str:
    e = html.escape
    color = {"running": "var(--jp-brand-color1, #1976d2)", "finished": "var(--jp-success-color1, #388e3c)"}
    status_color = color.get(s["status"], "var(--jp-error-color1, #d32f2f)")
    rows = [
        f"<b>jupyter-mlp</b> run <code>{e(s['id'])}</code>"
        + (f" <b>{e(s['name'])}</b>" if s.get("name") else "")
        + f" · <span style='color:{status_color}'>{e(s['status'])}</span>"
        + f" · project {e(s['project'])} · {s['cells']} cells · {_elapsed(s['elapsed'])}"
    ]
    if s["metrics"]:
        shown = list(s["metrics"].items())[-8:]
        rows.append(" · ".join(f"{e(k)} <b>{e(_fmt(v))}</b>" for k, v in shown))
    if s.get("gpu"):
        rows.append(e(_gpu_text(s["gpu"])))
    if s.get("failing"):
        rows.append("<span style='color:var(--jp-warn-color1, #f57c00)'>store not writable: "
                    "records are kept in memory</span>")
    return "<div class='jp-mlp-status' style='font-size:12px;line-height:1.5'>" + "<br>".join(rows) + "</div>"


class TextStatus:
    def show(self, session: Any) -> None:
        print(text_line(session.summary()) + f" -> {session.summary()['where']}", flush=True)

    def refresh(self, session: Any) -> None:
        pass

    def close(self, session: Any) -> None:
        print(text_line(session.summary()), flush=True)


class WidgetStatus:
    def __init__(self) -> None:
        import ipywidgets

        self.widget = ipywidgets.HTML()

    def show(self, session: Any) -> None:
        from IPython.display import display

        self.widget.value = html_box(session.summary())
        display(self.widget)

    def refresh(self, session: Any) -> None:
        self.widget.value = html_box(session.summary())

    close = refresh


def has_widget_frontend(shell: Any) -> bool:
    """JupyterLab, Notebook 7 and VS Code send the cell's id with each execute request; papermill
    (nbclient) and consoles send none and cannot show widgets."""
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    if kernel is None or os.environ.get("MLP_RUN_ID"):
        return False
    try:
        parent = kernel.get_parent()
    except Exception:
        return False
    return bool((parent or {}).get("metadata", {}).get("cellId"))


def make_status(shell: Any) -> TextStatus | WidgetStatus:
    if not has_widget_frontend(shell):
        return TextStatus()
    try:
        return WidgetStatus()
    except Exception as exc:  # ipywidgets missing or broken: text is enough
        print(f"jupyter-mlp: no status widget ({exc!r}); showing text", file=sys.stderr)
        return TextStatus()
