"""Two checkouts of jupyter-mlp measured in turn, round by round, on this machine: the way to tell
a change from this VM's drift (its single-core speed moves by a third from one minute to the
next, so figures taken minutes apart do not compare).

    git worktree add /tmp/before <rev>        # the code to compare against
    python bench/interleaved.py pipeline /tmp/before . [--rounds 6] [--idle 1]
    python bench/interleaved.py tracker /tmp/before . [--rounds 8]

pipeline: `jupyter mlp pipeline run` of 8 independent 2 s stages at concurrency 4, warm (each
checkout on its own store, its launcher settled, as bench/pipeline.py's
parallel_8x2s_c4_cli_ratio), wall time / 2 s. tracker: bench/tracker.py's track_finish_warm_ms and
track_first_fresh_ms, each checkout in its own folder (a git repository, as a user's). The order
alternates from round to round. JSON on the last line: per checkout, the median and each round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TRACKER = """
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["TREE"], "bench"))
import tracker
print(json.dumps(tracker.track_finish_figures()))
"""


def _env(tree: Path, home: Path) -> dict[str, str]:
    return {**os.environ, "MLP_HOME": str(home), "PYTHONPATH": str(tree)}


def pipeline(trees: list[Path], rounds: int, idle: float = 0.0) -> dict[str, list[float]]:
    import pipeline as bench  # bench/pipeline.py: the pipeline, the command, settled()

    base = Path(tempfile.mkdtemp(prefix="mlp-interleaved-"))
    # The commands (and the launchers they start: `python -m` puts the working folder first on
    # sys.path) run from here, where no checkout is: each imports its own PYTHONPATH's code.
    os.chdir(base)
    spec = bench.eight_stages(base)
    homes = {tree: base / f"home{i}" for i, tree in enumerate(trees)}

    def run(tree: Path) -> float:
        command = ("pipeline", "run", str(spec), "--concurrency", "4")
        return bench.jupyter_mlp(homes[tree], *command, env={"PYTHONPATH": str(tree)})

    ratios: dict[str, list[float]] = {str(tree): [] for tree in trees}
    try:
        for tree in trees:
            run(tree)  # cold: starts the launcher the warm runs find
        for r in range(rounds):
            for tree in trees if r % 2 == 0 else trees[::-1]:
                bench.settled(homes[tree], 4)
                time.sleep(idle)
                ratios[str(tree)].append(round(run(tree) / 2.0, 3))
    finally:
        for tree in trees:
            bench.jupyter_mlp(homes[tree], "pool", "stop", env={"PYTHONPATH": str(tree)})
    return ratios


def tracker(trees: list[Path], rounds: int) -> dict[str, dict[str, list[float]]]:
    found: dict[str, dict[str, list[float]]] = {
        str(tree): {"track_finish_warm_ms": [], "track_first_fresh_ms": []} for tree in trees
    }
    for r in range(rounds):
        for tree in trees if r % 2 == 0 else trees[::-1]:
            with tempfile.TemporaryDirectory() as home:
                done = subprocess.run(
                    [sys.executable, "-c", TRACKER], cwd=tree, check=True, capture_output=True,
                    text=True, env={**_env(tree, Path(home)), "TREE": str(tree)},
                )  # fmt: skip
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            for key, values in found[str(tree)].items():
                values.append(figures[key])
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("pipeline", "tracker"))
    ap.add_argument("trees", nargs=2, type=lambda p: Path(p).resolve(), help="two checkouts")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--idle", type=float, default=0.0, metavar="S",
                    help="pipeline: wait S seconds more once the launcher settled")  # fmt: skip
    args = ap.parse_args()
    for tree in args.trees:  # as pip install does (this machine sets PYTHONDONTWRITEBYTECODE)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "jupyter_mlp")])
    out: dict = {}
    if args.what == "pipeline":
        for tree, values in pipeline(args.trees, args.rounds, args.idle).items():
            out[tree] = {
                "parallel_8x2s_c4_cli_ratio": round(statistics.median(values), 3),
                "rounds": values,
            }
    else:
        for tree, figures in tracker(args.trees, args.rounds).items():
            out[tree] = {k: round(statistics.median(v), 2) for k, v in figures.items()}
            out[tree]["rounds"] = figures
    for tree, figures in out.items():
        medians = {k: v for k, v in figures.items() if k != "rounds"}
        print(f"{tree}: {medians}", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
