"""Make the README's pictures from a real sweep: TensorBoard's HParams parallel-coordinates view, taken
with headless Chromium, and the sweep's own plot (summary.png).

    apt-get install -y chromium && pip install websocket-client
    python docs/screenshots.py [--data-root ../shared/data] [--epochs 2]

It trains a 3-job learning-rate sweep on MNIST (CPU: a few minutes), serves it with TensorBoard on
127.0.0.1, opens the HParams tab in Chromium through its DevTools protocol, clicks the parallel
coordinates view, and writes docs/hparams.png and docs/sweep_plot.png.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 760

# Finds an element through the shadow roots of TensorBoard's Polymer components.
DEEP_FIND = """
function deepFind(predicate) {
  const stack = [document.documentElement];
  while (stack.length) {
    const node = stack.pop();
    if (predicate(node)) return node;
    if (node.shadowRoot) stack.push(node.shadowRoot);
    for (const child of node.children || []) stack.push(child);
  }
  return null;
}
"""
CLICK_PARALLEL_COORDINATES = "(() => {" + DEEP_FIND + """
  const tab = deepFind(n => n.tagName === 'PAPER-TAB' && /parallel coordinates/i.test(n.textContent));
  if (tab) tab.click();
  return !!tab;
})()"""  # a function of its own each time: evaluated again, top-level declarations would clash


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, check, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    sys.exit(f"screenshots.py: {what} did not happen within {timeout:.0f} s")


def train_sweep(sweep_dir: Path, data_root: str, epochs: int) -> None:
    command = [sys.executable, str(REPO / "run.py"), "-m", "optimizer.lr=3e-4,1e-3,3e-3", f"trainer.epochs={epochs}",
               f"dataset.root={data_root}", "dataset.download=false", "trainer.progress=false",
               f"hydra.sweep.dir={sweep_dir}"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


class Chromium:
    """A headless Chromium page driven through the DevTools protocol."""

    def __init__(self, profile: Path):
        import websocket  # websocket-client

        port = free_port()
        binary = shutil.which("chromium") or shutil.which("chromium-browser") or sys.exit(
            "screenshots.py: no chromium on the PATH (apt-get install -y chromium)")
        # Chromium 111 and later refuse a DevTools socket from an origin not allowed: this client's only
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={port}",
             f"--remote-allow-origins=http://127.0.0.1:{port}", f"--user-data-dir={profile}",
             f"--window-size={WIDTH},{HEIGHT}", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            targets = wait_for("Chromium's start", lambda: self._targets(port))
            page = next(t for t in targets if t["type"] == "page")
            self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        except BaseException:  # no browser left running
            self.process.kill()
            self.process.wait(timeout=30)
            raise
        self.next_id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)

    @staticmethod
    def _targets(port: int):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=os.environ.get("LENET_EXP_DATA") or str(REPO.parent / "shared" / "data"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--sweep", type=Path, default=None, help="photograph this sweep instead of training one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lenet_exp_screenshots_") as scratch:
        scratch = Path(scratch)
        sweep_dir = args.sweep or scratch / "sweep"
        if not args.sweep:
            train_sweep(sweep_dir, args.data_root, args.epochs)
        shutil.copyfile(sweep_dir / "summary.png", args.out / "sweep_plot.png")

        log = open(scratch / "tensorboard.log", "w")
        server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep_dir),
                                   "--host", "127.0.0.1", "--port", "0", "--load_fast=false"],
                                  stdout=log, stderr=subprocess.STDOUT)
        browser = None
        try:
            address = wait_for("TensorBoard's start", lambda: re.search(
                r"http://127\.0\.0\.1:\d+", (scratch / "tensorboard.log").read_text()))
            runs_url = f"{address.group(0)}/data/runs"  # the page shows what was loaded when it opened
            wait_for("TensorBoard's loading of the sweep",
                     lambda: len(json.loads(urllib.request.urlopen(runs_url, timeout=10).read())) >= 4)
            browser = Chromium(scratch / "profile")
            browser.call("Page.enable")
            browser.call("Page.navigate", url=f"{address.group(0)}/#hparams")
            try:
                wait_for("the HParams tab", lambda: browser.evaluate(CLICK_PARALLEL_COORDINATES), timeout=60)
            except SystemExit:
                browser.screenshot(scratch.parent / "lenet_exp_screenshots_failed.png")
                raise
            time.sleep(5)  # the view draws its axes and lines
            browser.screenshot(args.out / "hparams.png")
        finally:
            if browser:
                browser.close()
            server.terminate()
            server.wait(timeout=30)
            log.close()
    for name in ("hparams.png", "sweep_plot.png"):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
