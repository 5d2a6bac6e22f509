"""Reading the runs of an MLflow experiment (completed ones only, one per configuration)."""

from __future__ import annotations

from src.figures.runs import HISTORIES, Run, variant


def load_runs(uri: str, experiment: str) -> list[Run]:
    """The completed runs of ``experiment`` (summary runs excluded), with their histories."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    found, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], filter_string="tags.completed = 'true'",
                                  max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            break
    # One run per configuration: two jobs of the same config (e.g. a job re-run by hand or by
    # two overlapping sweeps) would otherwise count as two seeds. The latest one is kept.
    latest: dict[str, object] = {}
    for r in sorted(found, key=lambda r: r.info.start_time):
        latest[r.data.tags.get("config_hash", r.info.run_id)] = r
    runs = []
    for r in latest.values():
        tags, params = r.data.tags, r.data.params
        if tags.get("figure") == "summary":
            continue
        history = {
            key: sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, key))
            for key in HISTORIES if key in r.data.metrics
        }
        runs.append(Run(run_id=r.info.run_id, name=r.info.run_name or r.info.run_id,
                        figure=tags.get("figure", ""), cell=tags.get("cell", "?"),
                        benchmark=tags.get("benchmark", "?"), variant=variant(tags, params),
                        seed=int(tags.get("seed", 0)), params=dict(params),
                        metrics=dict(r.data.metrics), history=history, store=uri,
                        machine=tags.get("machine", "")))
    return runs
