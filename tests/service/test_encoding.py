"""The encoder in a child process (what `zsrec serve` runs): same answers as in-process, clear failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from zsrec.encoders import load_encoder
from zsrec.errors import ConfigError, ZsrecError
from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.encoding import EncoderProcess, EncoderUnavailableError

NEW_ITEM = {"item_id": "lantern", "title": "LED camping lantern for tents", "category": "Outdoor > Lights"}


def answers(folder: Path, config: ServiceConfig) -> tuple[list, list]:
    with TestClient(create_app(folder, config)) as c:
        assert c.post("/items", json={"items": [NEW_ITEM]}).status_code == 200
        by_text = c.post("/recommend", json={"profile": "a tent lamp for the campsite", "k": 5}).json()["items"]
        similar = c.post("/similar", json={"text": "camping lantern", "k": 3}).json()["items"]
    return by_text, similar


def test_child_process_encoder_answers_as_the_in_process_one(folder: Path, tmp_path: Path) -> None:
    import shutil

    twin = tmp_path / "twin"
    shutil.copytree(folder, twin)
    child = answers(folder, ServiceConfig(encoder_process=True))
    inline = answers(twin, ServiceConfig(encoder_process=False))
    assert [i["item_id"] for i in child[0]] == [i["item_id"] for i in inline[0]]
    assert [i["item_id"] for i in child[1]] == [i["item_id"] for i in inline[1]]
    np.testing.assert_allclose([i["score"] for i in child[0]], [i["score"] for i in inline[0]], atol=1e-6)
    assert "lantern" in {i["item_id"] for i in child[1]}


def test_encoder_process_matches_the_encoder_and_stops() -> None:
    process = EncoderProcess("hashing-64")
    try:
        direct = load_encoder("hashing-64")
        assert (process.model_id, process.dim) == (direct.model_id, direct.dim)
        texts = ["red tent", "chef knife"]
        np.testing.assert_array_equal(process.encode(texts, kind="query"), direct.encode(texts, kind="query"))
        assert process.n_forward_texts == 2
    finally:
        process.close()
    with pytest.raises(EncoderUnavailableError):  # a stopped process: 503 in the API, not a hang
        process.encode(["x"])


def test_the_encoder_process_yields_the_cores_to_requests() -> None:
    import os

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    process = EncoderProcess("hashing-64")
    try:
        (pid,) = process.pids()
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(mine + 10, 19)
    finally:
        process.close()
    with pytest.raises(ZsrecError, match="nice"):
        EncoderProcess("hashing-64", nice=20)


def test_a_killed_encoder_process_gives_503_not_a_hang(folder: Path) -> None:
    import os
    import signal

    with TestClient(create_app(folder, ServiceConfig(encoder_process=True))) as c:
        encoder = c.app.state.engine.encoder
        (pid,) = encoder.pids()
        os.kill(pid, signal.SIGKILL)
        r = c.post("/recommend", json={"profile": "a tent", "k": 3})
        assert r.status_code == 503 and "restart" in r.json()["detail"]
        assert c.post("/recommend", json={"user_id": "u0", "k": 3}).status_code == 200  # no text: still served


def test_bad_encoder_spec_fails_at_start() -> None:
    with pytest.raises(ZsrecError):
        EncoderProcess("/no/such/model/folder")


def test_encoder_process_setting_from_the_environment() -> None:
    assert ServiceConfig.from_env({}).encoder_process is True
    assert ServiceConfig.from_env({"ZSREC_ENCODER_PROCESS": "0"}).encoder_process is False
    with pytest.raises(ConfigError, match="ZSREC_ENCODER_PROCESS"):
        ServiceConfig.from_env({"ZSREC_ENCODER_PROCESS": "yes"})


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process states from /proc (Linux)")
def test_the_encoder_process_ends_when_the_server_is_killed(tmp_path: Path) -> None:
    """`kill -9` of the server must not leave its encoder process behind (it would hold the model forever)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "from zsrec.service.encoding import EncoderProcess\n"
        "e = EncoderProcess('hashing-64')\n"
        "print(e.pids()[0], flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(server.stdout.readline())
        assert _running(child)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), "the encoder process outlived its killed server"
    finally:
        server.kill()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child that nobody has reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return False
