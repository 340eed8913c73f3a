"""The docker-compose cluster: the files checked without an engine, and, where an engine can
be had (CI starts one with docker/engine.sh), a real 3-node run that must give the same model
as a local 3-rank run. Without an engine that test skips and says why."""

import ipaddress
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from tests.helpers import BIN, ROOT, run_mpi, train_cmd

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
RUN = ["--samples", "2000", "--features", "9", "--batch-size", "99", "--steps", "15", "--seed", "5"]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_services_run_what_the_image_holds(compose):
    """Each service builds the repository's Dockerfile, runs a command that image installs,
    sets only variables the scripts it runs read, and can do what those scripts do."""
    dockerfile = DOCKERFILE.read_text()
    scripts = {p.name: p.read_text() for p in (ROOT / "docker").iterdir() if p.is_file()}
    for name, svc in compose["services"].items():
        build = svc["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, name
        for arg in build.get("args", {}):  # every build argument is one the Dockerfile takes
            assert re.search(rf"^ARG {arg}\b", dockerfile, re.M), (name, arg)
        command = svc["command"][0]
        assert command in scripts and command in dockerfile, f"{name}: {command} not installed"
        read = "".join(scripts.values())
        for var in svc["environment"]:  # a variable nobody reads is a setting that does nothing
            assert re.search(rf"\$\{{?{var}\b", read), (name, var)
        if "tc qdisc" in scripts[command]:  # it shapes its link: needs the capability
            assert "NET_ADMIN" in svc.get("cap_add", []), name
        assert "ports" not in svc  # nothing published to the host
        results = [v for v in svc["volumes"] if v.endswith(":/results")]
        assert results and "/results" in scripts["run-cluster"]  # results reach the host
    # the nodes start after the head, which runs the job (run-cluster reads the node list)
    assert "head" in compose["services"]["node"]["depends_on"]


def test_compose_network_is_in_the_benchmark_range(compose):
    allowed = ipaddress.ip_network("198.18.0.0/15")
    for net in compose["networks"].values():
        subnets = [ipaddress.ip_network(c["subnet"]) for c in net["ipam"]["config"]]
        assert subnets and all(s.subnet_of(allowed) for s in subnets)
    fabric = compose["services"]["head"]["environment"]["FABRIC"]
    assert ipaddress.ip_network(fabric) == subnets[0]  # MPI is pinned to that network


def test_dockerfile_keys_and_logins():
    text = DOCKERFILE.read_text()
    assert text.index("ARG BASE_IMAGE") < text.index("FROM ${BASE_IMAGE}")
    assert "ssh-keygen" in text and "PasswordAuthentication no" in text
    assert not re.search(r"COPY[^\n]*(id_|\.pem|authorized_keys)", text)  # no key committed
    assert not re.search(r"^EXPOSE", text, re.M)
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    assert not [f for f in tracked.stdout.split() if re.search(r"id_(rsa|ed25519)|\.pem$", f)]


@pytest.mark.parametrize("script", ["node-entrypoint", "run-cluster", "engine.sh"])
def test_scripts_parse(script):
    shell = "bash" if script.endswith(".sh") else "sh"
    r = subprocess.run([shell, "-n", str(ROOT / "docker" / script)], capture_output=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.docker
def test_compose_file_validates_with_docker_compose():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (docker/engine.sh start installs it)")
    r = subprocess.run(
        [exe, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr


def engine_or_skip():
    if shutil.which("docker") is None or shutil.which("docker-compose") is None:
        pytest.skip("no docker CLI or docker-compose: cannot run the compose cluster")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine answers (start one with docker/engine.sh start)")
    base = subprocess.run(["docker", "image", "inspect", "dist-logreg-base"], capture_output=True)
    return "dist-logreg-base" if base.returncode == 0 else "python:3.11-slim"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_three_node_cluster_trains_the_local_model(tmp_path):
    base = engine_or_skip()
    wheels = ROOT / "wheelhouse"
    r = subprocess.run(
        [str(BIN / "pip"), "wheel", "-q", "--wheel-dir", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    project = "dlrtest"
    env = {**os.environ, "BASE_IMAGE": base}
    for var in ("LINK_RATE", "LINK_DELAY_MS", "LINK_LOSS_PCT"):
        env.pop(var, None)  # unshaped links for this test

    def compose(*args, timeout=300):
        return subprocess.run(
            ["docker-compose", "-p", project, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    try:
        assert compose("build").returncode == 0
        up = compose("up", "-d", "--scale", "node=2")
        assert up.returncode == 0, up.stderr
        out = ROOT / "runs" / "docker-test"
        r = compose(
            "exec",
            "-T",
            "head",
            "run-cluster",
            "train",
            *RUN,
            "--allreduce",
            "hierarchical",
            "--out",
            "/results/docker-test",
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert "3 nodes x 1 ranks" in r.stdout
        local = run_mpi(3, train_cmd(*RUN, "--out", str(tmp_path)), timeout=60)
        assert local.returncode == 0
        np.testing.assert_allclose(
            np.load(out / "model.npz")["coef"], np.load(tmp_path / "model.npz")["coef"], rtol=1e-10
        )
        traffic = json.loads((out / "traffic.json").read_text())
        assert traffic["node_of_rank"] == [0, 1, 2]  # three containers, three nodes
    finally:
        compose("down", "-v")
        shutil.rmtree(ROOT / "runs" / "docker-test", ignore_errors=True)
    left = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"name={project}_"], capture_output=True, text=True
    ).stdout
    assert left.strip() == ""
