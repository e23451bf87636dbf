"""Fanning tasks out to worker processes: joblib's ``loky`` locally, or ``dask``
(a dask.distributed cluster, or a local one). Sweeps and ``aepipe tune`` both use it."""

from __future__ import annotations

import contextlib

from ..errors import AepipeError, SpecError

BACKENDS = ("loky", "dask")


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise SpecError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def on_dask(tasks, jobs: int, scheduler: str | None, collect) -> list[dict]:
    """joblib's dask backend on the cluster at ``scheduler``, else on a
    LocalCluster of ``jobs`` single-threaded worker processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise AepipeError("--backend dask needs dask.distributed: pip install 'aepipe[dask]'") from None
    import logging

    import joblib

    # a worker that still runs TensorFlow threads at shutdown is killed with a warning per worker
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
    with contextlib.ExitStack() as stack:  # joblib's dask backend uses the client made here
        if scheduler:
            stack.enter_context(Client(scheduler))
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=jobs, threads_per_worker=1,
                                                       processes=True, dashboard_address=None))
            stack.enter_context(Client(cluster))
        with joblib.parallel_config(backend="dask"):
            return collect(joblib.Parallel(n_jobs=-1, return_as="generator")(tasks))
