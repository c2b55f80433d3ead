"""Notebook 03 in a real browser: JupyterLab + headless Chromium + the ipywidgets inspector.

What a learner does after `make lab`: open notebook 03, Run > Run All Cells, pick another answer in
the inspector, read the new reward breakdown, type their own answer. The test does the same through
the UI (Playwright driving Debian's Chromium, nothing downloaded) and checks that the breakdown the
browser shows is exactly ``utils.rewards.inspector.inspect_completion(...).text`` for the chosen item.

Run it with ``make browser-test`` (installs what it needs). Under plain ``make test`` it is skipped
unless ``COURSE_BROWSER_TEST=1``. Screenshots, the server log and the browser console go to
``outputs/browser/`` (git-ignored); a failure adds ``failure.png`` there.

Only localhost: the server binds 127.0.0.1 on a free port with a random token, runs a *copy* of the
notebook (the committed one is never saved over), and is shut down at the end, even on failure.
"""

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

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `utils`, also when run outside tests/ (no conftest)
NOTEBOOK = ROOT / "notebooks" / "03_reward_design.ipynb"
ARTEFACTS = ROOT / "outputs" / "browser"
ENABLED = os.environ.get("COURSE_BROWSER_TEST") == "1"

if not ENABLED:
    pytest.skip("browser test: run `make browser-test` (or set COURSE_BROWSER_TEST=1)", allow_module_level=True)

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the make target installs it; say so instead of skipping
    pytest.fail("browser test: playwright is not installed (run `make browser-test`)", pytrace=False)

# Bounded waits (seconds). Measured on 2 shared cores: server ~5 s, page + kernel ~7 s, run-all ~10 s.
SERVER_START_S = 90
PAGE_LOAD_S = 120
RUN_ALL_S = 300
WIDGET_UPDATE_S = 60

OPTIMAL = "optimal (DP)"
HACK = "hack: every event"
CUSTOM = "✏️ my own text"
MY_TEXT = "I would go to the gym, then lunch."


def find_chromium() -> str:
    """$CHROMIUM, else Debian's `chromium` (or `chromium-browser`) on PATH."""
    for cand in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        path = cand and shutil.which(cand)
        if path:
            return path
    pytest.fail(
        "browser test: no Chromium found: `sudo apt-get install chromium` (Debian/Ubuntu) "
        "or set CHROMIUM=/path/to/chromium",
        pytrace=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(settings_dir: Path) -> None:
    """Lab settings for a quiet, deterministic page: no news/update requests or toasts, every
    cell in the DOM (no virtual scrolling), no autosave (we only ever run a copy anyway).
    The workspace folder is new each run, so the page opens as on a first visit."""
    files = {
        "@jupyterlab/apputils-extension/notification": {
            "fetchNews": "false",
            "checkForUpdates": False,
            "doNotDisturbMode": True,
        },
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    }
    for name, value in files.items():
        path = settings_dir / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def http_get(url: str, token: str):
    """JSON from the server's REST API, or None while it does not answer."""
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=3) as r:  # noqa: S310 - localhost only
            return json.load(r) if r.status == 200 else None
    except (OSError, ValueError):
        return None


class LabServer:
    """`jupyter lab` on 127.0.0.1:<free port> with a token; stop() always leaves nothing behind."""

    def __init__(self, root_dir: Path, state_dir: Path, log_path: Path):
        self.root_dir, self.state_dir, self.log_path = root_dir, state_dir, log_path
        self.token = secrets.token_hex(24)
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        settings = self.state_dir / "user-settings"
        write_settings(settings)
        env = {
            **os.environ,
            "COURSE_PROFILE": os.environ.get("COURSE_PROFILE", "smoke"),
            # the notebook saves a reward set and figures: never over the learner's outputs/
            "COURSE_OUTPUT_DIR": str(ARTEFACTS / "course-outputs"),
            "JUPYTER_CONFIG_DIR": str(self.state_dir / "config"),
            "JUPYTER_DATA_DIR": str(self.state_dir / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.state_dir / "runtime"),
        }
        for _attempt in range(3):  # a free port can be taken between our check and the bind
            self.port = free_port()
            cmd = [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root_dir}",
                f"--LabApp.user_settings_dir={settings}",
                f"--LabApp.workspaces_dir={self.state_dir / 'workspaces'}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
            ]  # no PyPI queries from the extension panel
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                cmd.append("--allow-root")  # CI and containers run as root
            log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
            log.write(f"\n$ {' '.join(c for c in cmd if 'token' not in c)}\n")
            log.flush()
            self._log = log
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + SERVER_START_S
            while time.monotonic() < deadline and self.proc.poll() is None:
                if http_get(f"{self.base}/api/status", self.token) is not None:
                    return
                time.sleep(0.5)
            if self.proc.poll() is None:
                self.stop()
                pytest.fail(
                    f"JupyterLab did not answer within {SERVER_START_S} s (log: {self.log_path})", pytrace=False
                )
            log.close()
            if "already in use" not in self.log_path.read_text()[-2000:]:
                break
        pytest.fail(f"JupyterLab exited at start (log: {self.log_path})", pytrace=False)

    def kernel_states(self) -> list[str]:
        sessions = http_get(f"{self.base}/api/sessions", self.token) or []
        return [s["kernel"]["execution_state"] for s in sessions if s.get("kernel")]

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            import psutil  # installed with the course stack (accelerate needs it)

            children = psutil.Process(proc.pid).children(recursive=True)  # the kernel(s)
        except Exception:  # noqa: BLE001 - best effort; the server normally stops them itself
            children = []
        if proc.poll() is None:
            try:  # graceful: the server shuts its kernels down
                req = urllib.request.Request(
                    f"{self.base}/api/shutdown", method="POST", headers={"Authorization": f"token {self.token}"}
                )
                urllib.request.urlopen(req, timeout=5).close()  # noqa: S310 - localhost only
            except OSError:
                pass
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        for child in children:  # anything the server left behind, by pid
            try:
                child.kill()
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._log.close()


@pytest.fixture
def lab():
    if ARTEFACTS.exists():
        shutil.rmtree(ARTEFACTS)
    work = ARTEFACTS / "lab"  # under the repo, so the setup cell finds `utils` from the notebook's folder
    work.mkdir(parents=True)
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    server = LabServer(work, ARTEFACTS / "jupyter-state", ARTEFACTS / "jupyter-server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def gallery_item(problem_index: int, label: str) -> str:
    from utils.rewards.inspector import completion_options
    from utils.task import load_split

    return completion_options(load_split("train")[problem_index])[label]


def expected_text(problem_index: int, completion: str) -> str:
    """What the inspector must show: the same pure function, run here."""
    from utils.rewards.inspector import inspect_completion
    from utils.task import load_split

    return inspect_completion(load_split("train")[problem_index], completion).text


def full_marks(problem_index: int) -> float:
    """The most the inspector's reward set (the course's default) can pay: 80 for format + strict score."""
    from utils.rewards.inspector import inspect_completion
    from utils.task import load_split

    return inspect_completion(load_split("train")[problem_index], "").explanation.max_total


def total_of(breakdown: str) -> float:
    match = re.search(r"^\s*TOTAL\s+(-?[\d.]+)", breakdown, re.M)
    assert match, f"no TOTAL line in the rendered breakdown:\n{breakdown}"
    return float(match.group(1))


def options(select) -> list[str]:
    """A <select>'s option labels (ipywidgets writes spaces as no-break spaces)."""
    return [t.replace("\xa0", " ") for t in select.evaluate("s => Array.from(s.options, o => o.text)")]


def selected(select) -> str:
    """The label of a <select>'s chosen option, as the learner sees it."""
    index = select.evaluate("s => s.selectedIndex")
    return options(select)[index] if index >= 0 else ""


def choose(select, label: str) -> None:
    """Pick an option by its visible label, as a user does (fires input + change)."""
    labels = options(select)
    assert label in labels, f"{label!r} is not among the options {labels}"
    select.select_option(index=labels.index(label))


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s} s for {what}")
        time.sleep(0.2)


def run_all_and_wait(page, n_code_cells: int) -> float:
    """Run > Run All Cells, then wait until every code cell has an execution count."""
    t0 = time.monotonic()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
    deadline = t0 + RUN_ALL_S
    while True:
        texts = [t.strip() for t in prompts.all_inner_texts()]
        done = [t for t in texts if re.fullmatch(r"\[\d+\]:", t)]
        busy = page.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']").count()
        if len(texts) == n_code_cells and len(done) == n_code_cells and not busy:
            return time.monotonic() - t0
        if len(done) < len(texts) and not any(t == "[*]:" for t in texts) and not busy and time.monotonic() - t0 > 5:
            # nothing queued or running, yet cells without a count: a cell raised, the rest were skipped
            if not done:
                raise AssertionError("Run > Run All Cells started nothing (see failure.png)")
            errors = page.locator(".jp-OutputArea-output", has_text="Traceback").all_inner_texts()
            raise AssertionError(
                f"run-all stopped after {len(done)} of {n_code_cells} code cells:\n"
                + ("\n".join(errors)[-3000:] or "(no traceback shown)")
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"run-all not finished after {RUN_ALL_S} s: prompts {texts}")
        time.sleep(0.5)


def test_inspector_in_jupyterlab(lab):
    chromium = find_chromium()
    n_code = sum(c["cell_type"] == "code" for c in json.loads(NOTEBOOK.read_text())["cells"])
    timings: dict[str, float] = {}
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            try:
                t0 = time.monotonic()
                page.goto(f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}", timeout=PAGE_LOAD_S * 1000)
                # the notebook is open and its kernel (the course venv's python3) has started
                expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=PAGE_LOAD_S * 1000)
                wait_until(lambda: lab.kernel_states() == ["idle"], PAGE_LOAD_S, "the notebook's kernel to start")
                timings["open notebook"] = time.monotonic() - t0

                timings["run all cells"] = run_all_and_wait(page, n_code)

                # the inspector: problem + answer dropdowns, text, Gantt plot, breakdown
                answer = page.get_by_label("answer", exact=True)
                expect(answer).to_be_visible(timeout=WIDGET_UPDATE_S * 1000)
                inspector = page.locator(".widget-vbox").filter(has=answer)
                problem_label = selected(page.get_by_label("problem", exact=True))
                index = int(re.match(r"#(\d+):", problem_label).group(1))
                report = inspector.locator(".widget-html pre")
                plot = inspector.locator(".widget-output img")
                textarea = inspector.locator("textarea")
                inspector.scroll_into_view_if_needed()
                expect(plot).to_have_count(1, timeout=WIDGET_UPDATE_S * 1000)
                expect(report).to_contain_text("TOTAL", timeout=WIDGET_UPDATE_S * 1000)

                # 1. the default item: the DP optimum, full marks
                assert selected(answer) == OPTIMAL
                before, plot_before = report.inner_text(), plot.get_attribute("src")
                assert before.strip() == expected_text(index, gallery_item(index, OPTIMAL)).strip()
                assert total_of(before) == full_marks(index) == 80  # the default set: format 10 + maximal score 70
                inspector.screenshot(path=str(ARTEFACTS / "inspector_optimal.png"))

                # 2. a reward hack from the gallery: the breakdown and the plot change, TOTAL drops
                t0 = time.monotonic()
                choose(answer, HACK)
                expect(report).not_to_have_text(before, timeout=WIDGET_UPDATE_S * 1000)
                expect(plot).not_to_have_attribute("src", plot_before or "", timeout=WIDGET_UPDATE_S * 1000)
                timings["select gallery item"] = time.monotonic() - t0
                after = report.inner_text()
                assert after.strip() == expected_text(index, gallery_item(index, HACK)).strip()
                assert "overlapping pairs" in after
                assert 0 < total_of(after) < full_marks(index)
                assert textarea.input_value() == gallery_item(index, HACK)
                inspector.screenshot(path=str(ARTEFACTS / "inspector_hack.png"))
                page.screenshot(path=str(ARTEFACTS / "lab_notebook03.png"))

                # 3. the learner types their own answer: the dropdown switches to "my own text"
                plot_hack = plot.get_attribute("src")
                textarea.fill(MY_TEXT)
                wait_until(lambda: selected(answer) == CUSTOM, WIDGET_UPDATE_S, f"the answer dropdown to show {CUSTOM}")
                expect(report).to_contain_text("TOTAL", timeout=WIDGET_UPDATE_S * 1000)
                expect(report).not_to_have_text(after, timeout=WIDGET_UPDATE_S * 1000)
                expect(plot).not_to_have_attribute("src", plot_hack or "", timeout=WIDGET_UPDATE_S * 1000)
                typed = report.inner_text()
                assert typed.strip() == expected_text(index, MY_TEXT).strip()
                assert total_of(typed) == 0
                inspector.screenshot(path=str(ARTEFACTS / "inspector_own_text.png"))
            except BaseException:
                try:
                    page.screenshot(path=str(ARTEFACTS / "failure.png"), full_page=True, timeout=15_000)
                except Exception:  # noqa: BLE001 - keep the original error
                    pass
                raise
        finally:
            (ARTEFACTS / "browser-console.log").write_text("\n".join(console) + "\n")
            browser.close()
    (ARTEFACTS / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in timings.items()}, indent=1))
    print("browser test timings (s):", {k: round(v, 1) for k, v in timings.items()})
