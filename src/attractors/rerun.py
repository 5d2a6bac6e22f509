"""Redraw the attractors of a finished run: rebuild its network from the store (config and
weights logged as artifacts) and draw it (``python -m src.attractors RUN_ID``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from src.attractors import picture, title_of


def run_weights(client, run_id: str, cfg, net, workdir: Path) -> dict[str, dict]:
    """``{stage: state_dict}`` of a finished run, from its artifacts (see the module doc)."""
    names = {a.path for a in client.list_artifacts(run_id, "weights")}
    weights: dict[str, dict] = {}
    if "weights/init.pt" not in names:  # an older run: the seeded build is its initial state
        weights["init"] = {k: v.clone() for k, v in net.state_dict().items()}
    for stage in ("init", "warmup"):
        if f"weights/{stage}.pt" in names:
            local = client.download_artifacts(run_id, f"weights/{stage}.pt", str(workdir))
            weights[stage] = torch.load(local, map_location="cpu", weights_only=True)
    ckpts = [a.path for a in client.list_artifacts(run_id, "checkpoint")]
    if ckpts:
        local = client.download_artifacts(run_id, ckpts[0], str(workdir))
        state = torch.load(local, map_location="cpu", weights_only=True)["state_dict"]
        weights["trained"] = {k.removeprefix("net."): v for k, v in state.items()
                              if k.startswith("net.")}
    return weights


def rebuild(client, run_id: str, workdir: Path):
    """``(cfg, net, vaa_inputs)`` of a logged run: its config, the network, the VAA inputs."""
    import pytorch_lightning as pl
    from omegaconf import OmegaConf

    from src import tracking
    from src.pipeline import build

    tracking.quiet_mlflow()  # no download progress bars
    cfg = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", str(workdir)))
    pl.seed_everything(cfg.seed, verbose=False)
    _, net, inputs = build(cfg)
    return cfg, net, inputs


def main(argv=None) -> None:
    import tempfile

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from src import tracking

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_id", help="an MLflow run id (the summary of `make run` prints it)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: the embedded store outputs/mlflow.db)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write the PNG (default: outputs/attractors/<run name>.png)")
    args = p.parse_args(argv)
    tracking.quiet_mlflow()
    uri = tracking.resolve_uri(args.tracking_uri, Path.cwd())
    client = MlflowClient(uri)
    try:
        run = client.get_run(args.run_id)
    except MlflowException:
        sys.exit(f"error: no run {args.run_id!r} in the store at {uri}: pass a run id that "
                 "`make run` printed, or --tracking-uri for another store")
    if run.info.status != "FINISHED":
        sys.exit(f"error: run {args.run_id} is {run.info.status}, not FINISHED: only finished "
                 "runs have all their weights")
    name = run.info.run_name or args.run_id
    with tempfile.TemporaryDirectory() as tmp:
        cfg, net, inputs = rebuild(client, args.run_id, Path(tmp))
        weights = run_weights(client, args.run_id, cfg, net, Path(tmp))
        out = args.out or Path("outputs") / "attractors" / f"{name}.png"
        picture(net, weights, inputs, cfg.vaa.steps, cfg.vaa.group_size, cfg.seed, cfg.vaa.eps,
                title_of(name, cfg), out)
        logged = Path(tmp) / "attractors.png"  # the artifact's name, whatever --out says
        logged.write_bytes(out.read_bytes())
        client.log_artifact(args.run_id, str(logged))
    print(out)


if __name__ == "__main__":
    main()
