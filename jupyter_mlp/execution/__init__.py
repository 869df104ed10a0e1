"""Run a notebook snapshot with parameters (papermill), as jobs on pluggable executors.

params      `-p k=v` / `-P file` parsing, the parameters cell, type checks against the parent
engine      the `mlp` papermill engine: records every cell into the run from the outside
jobs        the job row, its state machine (the one place status changes), the runner template
submit      a rerun or a notebook file -> a validated, queued job (errors before anything is queued)
executors   the Executor interface and the `jupyter_mlp.executors` entry point registry
local       the local executor: job processes in their own sessions, concurrency, GPUs, cancel
runner      the job process: snapshot -> papermill -> output notebook, status through a reporter
run_job     `python -m jupyter_mlp.execution.run_job RUN_ID` and the warm launcher
service     JobService: what the server (and the CLI) call
cli_commands  `jupyter mlp rerun | run | cancel`

Nothing here is imported by `import jupyter_mlp` or by the kernel side.
"""
