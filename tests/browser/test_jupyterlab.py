"""A student's flow in a real browser: JupyterLab serves a released notebook (filled with a correct
answer, as a student would type it), the cells run, and the in-notebook self-check shows its table."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from grader.checks import checks_for

from .conftest import ROOT, require

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ASSIGNMENT = "02_dropout"
CORRECT = ROOT / "data" / "sample_class" / "answers" / ASSIGNMENT / "ada_correct.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def release_with_answer(root: Path) -> Path:
    """The release folder copied alone (as onto a JupyterHub), with a correct answer typed in."""
    from make_sample_class import answer_functions, fill  # scripts/ is on sys.path

    folder = root / ASSIGNMENT
    shutil.copytree(ROOT / "notebooks" / ASSIGNMENT, folder)
    path = folder / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    nbformat.write(fill(notebook, answer_functions(CORRECT)), path)
    return path


def lab_environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NBGRADER_EXECUTION", "MPLBACKEND")}
    env.update(
        DNN_KIT_QUICK="1",  # the experiments' short version: this test is about the flow
        JUPYTER_CONFIG_DIR=str(tmp / "config"),  # no user or machine configuration leaks in
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


def start_lab(tmp: Path, root: Path, port: int, token: str) -> subprocess.Popen:
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no news or update checks (they would ask the internet, and their toast covers the page)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]  # fmt: skip
    with open(tmp / "jupyter.log", "w") as log:  # the server keeps its own copy of the handle
        return subprocess.Popen(
            command,
            cwd=root,
            env=lab_environment(tmp),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_serving(server: subprocess.Popen, url: str, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"jupyter lab did not answer within {seconds} s:\n{log.read_text()[-3000:]}")


def api(base: str, token: str, path: str, body: dict | None = None) -> dict | list:
    request = urllib.request.Request(
        f"{base}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def start_kernel_session(base: str, token: str, notebook: str) -> str:
    """Start the notebook's kernel before the page opens it, so JupyterLab connects to this one
    session instead of racing to create its own (seen on a busy machine: two kernels, one shut
    down under the page's feet, and Run All sent nowhere)."""
    body = {
        "path": notebook,
        "name": Path(notebook).name,
        "type": "notebook",
        "kernel": {"name": "python3"},
    }
    return api(base, token, "/api/sessions", body)["kernel"]["id"]


def stop(server: subprocess.Popen) -> None:
    """Stop the server we started (and the kernels it started, in its process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    for _ in range(100):  # kernels that outlived the server are still in its process group
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        time.sleep(0.1)


def test_student_notebook_runs_and_self_checks_in_jupyterlab(tmp_path, offline, screenshots):
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        require(False, "JupyterLab is not installed (pip install -e '.[course]')")
    root = tmp_path / "hub"
    root.mkdir()
    notebook = release_with_answer(root)
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    public = checks_for(ASSIGNMENT, include_hidden=False)
    total = sum(c.points for c in public)

    server = start_lab(tmp_path, root, port, token)
    try:
        wait_until_serving(server, f"{base}/api/status?token={token}", tmp_path / "jupyter.log")
        kernel = start_kernel_session(base, token, f"{ASSIGNMENT}/{notebook.name}")
        browser = offline(base + "/", base.replace("http", "ws") + "/")
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{base}/lab/tree/{ASSIGNMENT}/{notebook.name}?token={token}")
        cells = len(nbformat.read(notebook, as_version=4).cells)
        page.wait_for_function(
            f"document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length >= {cells}"
        )
        page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for()  # the status bar
        assert [s["kernel"]["id"] for s in api(base, token, "/api/sessions")] == [kernel], (
            "one session, ours"
        )
        page.screenshot(path=str(screenshots / "jupyterlab-opened.png"))

        # one cell first (the setup cell: imports), with the keyboard
        page.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
        page.keyboard.press("Escape")  # command mode
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-CodeCell .jp-InputPrompt", has_text="[1]:").first.wait_for(timeout=60_000)

        # Run → Run All Cells, as a student would
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

        summary = page.get_by_text(re.compile(r"public checks: [\d.]+/[\d.]+ points"))
        try:
            summary.wait_for(state="attached", timeout=150_000)
        except Exception:
            page.screenshot(path=str(screenshots / "jupyterlab-failure.png"))
            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            )
            pytest.fail(
                "the self-check summary never appeared; error outputs: "
                f"{[t[-1500:] for t in errors.all_inner_texts()]}; "
                f"server log: {(tmp_path / 'jupyter.log').read_text()[-2000:]}"
            )
        assert summary.text_content().strip() == f"public checks: {total:g}/{total:g} points"
        page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for()

        # each public check printed its table, every case passed, and nothing went to stderr
        for check in public:
            table = page.locator(".jp-OutputArea-output", has_text=f"{check.id}: ").last
            assert table.locator("table").count() >= 1, f"no table for {check.id}"
            assert "✘ fail" not in table.inner_text()
            assert f"{check.points:g}/{check.points:g} points" in table.inner_text()
        stderr = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        assert stderr.count() == 0, stderr.all_inner_texts()

        plot = page.locator(".jp-OutputArea-output img").first
        plot.scroll_into_view_if_needed()
        assert plot.evaluate("i => i.naturalWidth") > 0
        page.screenshot(path=str(screenshots / "jupyterlab-plot.png"))
        summary.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / "jupyterlab-self-check.png"))
        assert browser.blocked == [], f"JupyterLab tried to load from elsewhere: {browser.blocked}"
    finally:
        stop(server)
