"""Run a notebook snapshot with parameters (papermill), as jobs on pluggable executors.

param_options   the parameter options (-p both forms, -r, -y, -f/-P, -b); the model is ../params.py
param_translator papermill's Python translator, taught tuples, sets, complex and bytes
submit          a rerun or a notebook file -> a validated JobRequest (errors before anything is queued)
service         JobService: what the server (and the CLI) call to submit, cancel and watch jobs
service_marker  the marker of the service running for a store on this machine
executor        the Executor interface
registry        EXECUTORS: the `jupyter_mlp.executors` entry points, read once, built-ins lazily
local           the local executor: job processes in their own sessions, concurrency, GPUs, cancel
dask_executor   the dask executor: jobs as tasks on a `distributed` cluster
remote          what runs on a Dask worker: the HTTP reporter and the remote notebook job
job_process     `python -m jupyter_mlp.execution.job_process RUN_ID` and the warm launcher
lifecycle       JobProcess: the template of one job's life (before_start -> execute -> on_*)
notebook_job    NotebookJob: snapshot -> papermill -> output notebook, through a reporter
reporters       StoreReporter: what a job process writes into the store on this machine
engine          the `mlp` papermill engine: records every cell into the run from the outside
processes       pids with start times, liveness, process groups
gpus            the GPU cards of this machine or worker, handed to jobs one at a time
errors          JobError
cli_commands    `jupyter mlp rerun | run | cancel`

The job rows and their state machine are in store/jobs.py. Nothing here is imported by
`import jupyter_mlp` or by the kernel side.
"""


def skip_iri_grammar() -> None:
    """jsonschema (imported by nbformat, so by papermill) imports the optional `rfc3987_syntax`
    for its IRI format checks, which compiles a grammar at import time (1-4 s here). Notebook
    validation never checks IRIs: our own processes (the CLI, job processes, the launcher) skip
    it. Never called in a process we do not own (the Jupyter server's)."""
    import sys

    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
