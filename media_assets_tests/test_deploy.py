"""The shipped multi-machine configurations load and validate: Dagster's instance schema,
the launchers' own config schemas, and one `gpu` pool slot per GPU worker."""

from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@pytest.mark.parametrize("target,launcher", [("k8s", "K8sRunLauncher"),
                                             ("docker", "DockerRunLauncher")])
def test_instance_config_validates(target, launcher, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    for var in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"):
        monkeypatch.setenv(var, "x")
    config, _ = dagster_instance_config(str(DEPLOY / target))  # raises on a schema error
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["granularity"] == "run"
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    launcher_cfg = config["run_launcher"]
    assert launcher_cfg["class"] == launcher
    module = __import__(launcher_cfg["module"], fromlist=[launcher])
    checked = process_config(getattr(module, launcher).config_type(), launcher_cfg["config"])
    assert checked.success, checked.errors


def test_each_k8s_run_gets_one_gpu_and_the_models_read_only():
    config = yaml.safe_load((DEPLOY / "k8s" / "dagster.yaml").read_text())["run_launcher"]
    run = config["config"]["run_k8s_config"]["container_config"]["resources"]
    assert run["limits"]["nvidia.com/gpu"] == 1
    mounts = {m["name"]: m for m in config["config"]["volume_mounts"]}
    assert mounts["models"]["readOnly"] is True


def test_the_compose_file_and_workspace_parse():
    compose = yaml.safe_load((DEPLOY / "docker" / "docker-compose.yaml").read_text())
    assert {"postgres", "code", "webserver", "daemon"} <= set(compose["services"])
    # The UI stays on loopback unless the operator changes it.
    assert compose["services"]["webserver"]["ports"] == ["127.0.0.1:3000:3000"]
    workspace = yaml.safe_load((DEPLOY / "docker" / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["port"] == 4000
