"""``make browser-check``: the course website and notebook 04's widget, checked in a real browser (issue 22;
docs/book.md, "The browser check").

Chromium is Debian's (``apt-get install chromium`` when it is missing and we are root), driven by Playwright's
Python package through ``executable_path``: no browser is downloaded. Nothing leaves 127.0.0.1: every request to
another host is aborted and counted as a failure.

(a) The built site (``make book``), served by ``http.server`` on 127.0.0.1: every page loads with no console
    error, no failed request and nothing fetched from another host; every image has loaded (naturalWidth > 0);
    every equation has been typeset by MathJax (each ``.math`` element holds an ``mjx-container``, no
    ``mjx-merror``); every link inside the site leads to a page or file of the site and every ``#fragment`` to an
    element of its page; the search page finds a word of notebook 04.
(b) JupyterLab on 127.0.0.1 (no token, its own temporary settings, ``FASHIONLAB_MODE=quick``) with a copy of
    notebooks/04_*.ipynb (the committed file is never touched): it opens unchanged (no "unsaved" mark) with the
    kernel the notebook names, the widget cell shows its static note before running, "Run All Cells" runs it
    without an error, the widget renders with every dropdown inside a 1400 px window, changing a dropdown changes
    the ranking, and ticking two results and pressing "Search again with my picks" shows the Eq. 5 weights.

Screenshots go to ``--out`` (default _build/browser-check, ignored by git). Each check prints ``ok`` or ``FAIL``
with its numbers; the last line is ``browser-check: N passed, M failed``. ``--skip-if-no-chromium`` (CI): when
Chromium is missing and cannot be installed, print a line that says so and why, and exit 0.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))         # this checkout's fashionlab, whatever the environment has installed
VIEWPORT = {"width": 1400, "height": 900}
NOTEBOOK = "04_part_guided_search.ipynb"
CHROMIUM_NAMES = ("chromium", "chromium-browser")


# ------------------------------------------------------------------------------------------------------ chromium
def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def install_chromium(timeout: float) -> tuple[str | None, str]:
    """Debian's Chromium through apt-get (root only). ``(path, "")`` or ``(None, why not)``."""
    if not shutil.which("apt-get"):
        return None, "there is no apt-get on this machine"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return None, "apt-get needs root (run: sudo apt-get install chromium)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    t0 = time.monotonic()
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            return None, f"apt-get took longer than {timeout:.0f} s"
        print(f"browser-check: {' '.join(cmd)}", flush=True)
        try:
            run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            return None, f"{' '.join(cmd)} took longer than {timeout:.0f} s"
        if run.returncode != 0:
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or [""]
            return None, f"{' '.join(cmd)} failed (exit {run.returncode}): {tail[0][:200]}"
    path = find_chromium()
    return (path, "") if path else (None, "apt-get installed chromium but no chromium command was found")


# ------------------------------------------------------------------------------------------------------ reporting
class Report:
    def __init__(self):
        self.passed, self.failed = 0, []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)
        return ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _guard(context, foreign: list[str], stand_ins: dict[str, Path] | None = None):
    """Abort every request that would leave 127.0.0.1, and remember it; a URL of ``stand_ins`` is answered with
    that local file instead (and not counted)."""
    stand_ins = stand_ins or {}

    def route(r):
        url = r.request.url
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        elif url in stand_ins:
            r.fulfill(path=str(stand_ins[url]))
        else:
            foreign.append(url)
            r.abort()
    context.route("**/*", route)


def _watch(page, errors: list[str]):
    page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text[:300]}"))
    page.on("pageerror", lambda e: errors.append(f"page error: {str(e)[:300]}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status}: {r.url}"))


# ------------------------------------------------------------------------------------------------------ (a) the site
_PAGE_JS = """async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = 'eager'; }
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(r => { img.onload = img.onerror = r; })));
  const maths = Array.from(document.querySelectorAll('.math'));
  if (maths.length) {
    for (let i = 0; i < 100 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
      await new Promise(r => setTimeout(r, 100));
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  }
  const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id)
      .concat(Array.from(document.querySelectorAll('a[name]')).map(e => e.name));
  return {
    images: imgs.length,
    broken: imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    maths: maths.length,
    typeset: maths.filter(m => m.querySelector('mjx-container')).length,
    merrors: document.querySelectorAll('mjx-merror').length,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    ids: ids,
  };
}"""


def check_site(browser, site: Path, out: Path, report: Report) -> None:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(site), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        context = browser.new_context(viewport=VIEWPORT)
        foreign: list[str] = []
        _guard(context, foreign)
        page = context.new_page()
        errors: list[str] = []
        _watch(page, errors)
        pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                       if "_static" not in p.relative_to(site).parts)
        seen: dict[str, set[str]] = {}
        redirects: dict[str, str] = {}
        links: list[tuple[str, str]] = []
        totals = dict(images=0, broken=0, maths=0, typeset=0, merrors=0)
        load_problems, image_problems, math_problems = [], [], []
        t0 = time.monotonic()
        for rel in pages:
            before = len(errors)
            page.goto(base + rel, wait_until="load")
            if page.locator('meta[http-equiv="refresh"]').count():   # index.html: on to the landing page
                page.wait_for_url(lambda u: urldefrag(u)[0] != base + rel, timeout=10000)
                page.wait_for_load_state("load")
            info = _evaluate(page, _PAGE_JS)
            page.wait_for_load_state("networkidle")              # nothing in flight when the next page comes
            final = urldefrag(page.url)[0].removeprefix(base)
            if errors[before:]:
                load_problems.append(f"{rel}: " + "; ".join(errors[before:][:5]))
            if final != rel:                                     # a redirect: its target is a page of its own
                redirects[rel] = final
                continue
            seen[rel] = set(info["ids"])
            links += [(rel, u) for u in info["links"]]
            for k in totals:
                totals[k] += len(info[k]) if k == "broken" else info[k]
            if info["broken"]:
                image_problems.append(f"{rel}: " + ", ".join(info["broken"][:5]))
            if info["typeset"] != info["maths"] or info["merrors"]:
                math_problems.append(f"{rel}: {info['maths'] - info['typeset']} of {info['maths']} not typeset, "
                                     f"{info['merrors']} MathJax errors")
        seconds = time.monotonic() - t0
        for rel, final in redirects.items():
            seen[rel] = seen.get(final, set())
            if final not in pages:
                load_problems.append(f"{rel}: redirects to {final}, which is no page of the site")
        report.check("site: every page loads without console errors or failed requests", not load_problems,
                     f"{len(pages)} pages ({len(redirects)} a redirect) in {seconds:.0f} s"
                     + "".join(f"\n    {b}" for b in load_problems[:10]))
        report.check("site: nothing is fetched from another host", not foreign,
                     "; ".join(sorted(set(foreign))[:5]) if foreign else "every request went to 127.0.0.1")
        report.check("site: every image loads (naturalWidth > 0)", totals["images"] > 0 and not totals["broken"],
                     f"{totals['images']} images, {totals['broken']} not loaded"
                     + "".join(f"\n    {b}" for b in image_problems[:10]))
        report.check("site: every equation is typeset by MathJax", totals["maths"] > 0
                     and totals["typeset"] == totals["maths"] and not totals["merrors"],
                     f"{totals['typeset']} of {totals['maths']} equations typeset, {totals['merrors']} MathJax errors"
                     + "".join(f"\n    {b}" for b in math_problems[:10]))

        broken, internal, fragments = [], 0, 0
        for rel, url in links:
            if not url.startswith(base):
                continue
            internal += 1
            address, frag = urldefrag(url)
            target = address.removeprefix(base) or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if target in seen:
                if frag:
                    fragments += 1
                    if urllib.request.unquote(frag) not in seen[target]:
                        broken.append(f"{rel}: {url.removeprefix(base)} (no such id)")
            elif not _exists(address):
                broken.append(f"{rel}: {url.removeprefix(base)} (no such file)")
        report.check("site: no broken internal links", internal > 0 and not broken,
                     f"{internal} internal links ({fragments} with #fragments) on {len(pages)} pages, "
                     f"{len(broken)} broken" + "".join(f"\n    {b}" for b in broken[:10]))

        page.goto(base + "README.html")
        page.screenshot(path=str(out / "site-landing.png"))
        page.goto(base + "notebooks/04_part_guided_search.html")
        _evaluate(page, _PAGE_JS)
        page.locator("div.math").first.scroll_into_view_if_needed()
        page.screenshot(path=str(out / "site-notebook04-equation.png"))
        page.goto(base + "search.html?q=jump+detection")
        try:
            page.wait_for_selector("#search-results li", timeout=20000)
            hits = page.locator("#search-results li").count()
            text = page.locator("#search-results").inner_text()
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            hits, text = 0, str(e)
        page.screenshot(path=str(out / "site-search.png"))
        report.check("site: search finds notebook 04", hits > 0 and "Part-guided" in text,
                     f"{hits} results for 'jump detection'")
        context.close()
    finally:
        server.shutdown()


def _evaluate(page, js: str):
    """``page.evaluate(js)``, once more after a navigation (index.html's redirect to the landing page)."""
    for attempt in range(3):
        try:
            return page.evaluate(js)
        except Exception as e:  # noqa: BLE001 - playwright's Error; anything else is raised on the last try
            if "context was destroyed" not in str(e) or attempt == 2:
                raise
            page.wait_for_load_state("load")
    raise AssertionError("unreachable")


def _exists(url: str, method: str = "HEAD") -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


# ------------------------------------------------------------------------------------------------------ (b) JupyterLab
_CELLS_JS = """() => {
  const cells = Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell'));
  const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
  const errors = Array.from(document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
      .map(e => e.textContent).filter(t => /Traceback|Error:/.test(t));
  return {cells: cells.length, running: prompts.filter(p => p.includes('*')).length,
          done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length, errors: errors.map(t => t.slice(0, 600))};
}"""


_DROPDOWNS_JS = """w => Array.from(w.querySelectorAll('select')).map(s => {
  const r = s.getBoundingClientRect();
  let left = 0, right = window.innerWidth;
  for (let e = s.parentElement; e; e = e.parentElement) {      // what the ancestors that clip leave visible
    const st = getComputedStyle(e);
    if (st.overflowX !== 'visible') {
      const c = e.getBoundingClientRect();
      left = Math.max(left, c.left); right = Math.min(right, c.right);
    }
  }
  return {label: (s.parentElement.querySelector('label') || {}).textContent || '?', left: r.left, right: r.right,
          top: r.top, clipLeft: left, clipRight: right,
          inside: r.width > 0 && r.left >= left - 0.5 && r.right <= right + 0.5};
})"""


def _lab_settings(folder: Path) -> None:
    """JupyterLab settings for the check: every cell in the page (no windowing), no autosave, no news."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def _widget_state(widget) -> dict:
    return widget.evaluate("""w => {
      const texts = Array.from(w.querySelectorAll('.widget-html-content')).map(e => e.textContent.trim());
      return {captions: texts.filter(t => /^#\\d+ d=/.test(t)),
              status: texts.find(t => t.startsWith('demanded:')) || '',
              weights: texts.find(t => t.startsWith('Eq. 5 weights') || t.startsWith('one pick')
                                       || t.startsWith('tick')) || ''};
    }""")


def _wait_for(fn, timeout: float, every: float = 0.5):
    t0 = time.monotonic()
    while True:
        value = fn()
        if value or time.monotonic() - t0 > timeout:
            return value
        time.sleep(every)


def check_lab(browser, out: Path, report: Report, run_timeout: float) -> None:
    from fashionlab import book
    from fashionlab.nbtools import COLAB_BADGE, KERNELSPEC

    tmp = Path(tempfile.mkdtemp(prefix="fashionlab-lab-"))
    work = tmp / "work"
    work.mkdir()
    shutil.copyfile(ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)
    _lab_settings(tmp / "settings")
    port = _free_port()
    env = dict(os.environ, FASHIONLAB_MODE="quick", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
        JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"))
    env.pop("FASHIONLAB_STRICT_EXERCISES", None)
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={work}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.news_url=None", "--ServerApp.allow_root=True"]
    log = open(tmp / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    base = f"http://127.0.0.1:{port}"
    try:
        up = _wait_for(lambda: server.poll() is None and _exists(f"{base}/api", "GET") or server.poll() is not None,
                       60)
        if server.poll() is not None or not up:
            report.check("lab: JupyterLab starts", False, (tmp / "jupyterlab.log").read_text()[-1500:])
            return
        context = browser.new_context(viewport=VIEWPORT)
        foreign: list[str] = []
        # the notebook's "Open in Colab" badge is an image on colab.research.google.com: offline, the site's copy
        _guard(context, foreign, {COLAB_BADGE: ROOT / book.LOCAL_BADGE})
        page = context.new_page()
        errors: list[str] = []
        _watch(page, errors)
        page.goto(f"{base}/lab/tree/{NOTEBOOK}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120000)
        kernel = page.locator(".jp-Toolbar-kernelName").first
        status = page.locator(".jp-Notebook-ExecutionIndicator").first
        _wait_for(lambda: kernel.inner_text().strip() not in ("", "No Kernel")
                  and status.get_attribute("data-status") == "idle", 120)
        page.wait_for_timeout(1000)
        name = kernel.inner_text().strip() if kernel.count() else "?"
        dirty = page.locator(".lm-TabBar-tab.jp-mod-dirty").count()
        report.check("lab: the notebook opens unchanged, with the kernel it names",
                     dirty == 0 and name == KERNELSPEC["display_name"],
                     f"kernel {name!r}, {'marked unsaved' if dirty else 'not marked unsaved'}")
        widget_cell = page.locator(".jp-CodeCell", has_text="search_demo(session, k=8)").first
        widget_cell.scroll_into_view_if_needed()
        static = widget_cell.locator(".jp-OutputArea").inner_text()
        page.screenshot(path=str(out / "lab-1-before-running.png"))
        report.check("lab: before running, the widget cell says what it is", "needs a live kernel" in static
                     and "VBox(children" not in static, repr(static.strip()[:120]))

        t0 = time.monotonic()
        page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})   # the notebook has the focus
        page.locator(".lm-MenuBar-item", has=page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$"))).click()
        try:
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click(timeout=10000)
        except Exception:
            page.screenshot(path=str(out / "lab-run-menu.png"))
            raise
        page.wait_for_timeout(2000)
        state = _wait_for(lambda: (lambda s: s if s["running"] == 0 else None)(page.evaluate(_CELLS_JS)),
                          run_timeout, every=2)
        seconds = time.monotonic() - t0
        state = state or page.evaluate(_CELLS_JS)
        report.check("lab: Run All Cells runs notebook 04 in quick mode without an error",
                     state["running"] == 0 and state["done"] == state["cells"] and not state["errors"],
                     f"{state['done']} of {state['cells']} code cells run in {seconds:.0f} s"
                     + (f"; error: {state['errors'][0]}" if state["errors"] else "")
                     + ("" if state["running"] == 0 else f"; {state['running']} still running after {run_timeout:.0f} s"))

        widget = widget_cell.locator(".jp-OutputArea .widget-vbox").first
        try:
            widget.wait_for(timeout=30000)
            widget.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            selects = widget.locator("select")
            n = selects.count()
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            n, static = 0, str(e)
        page.screenshot(path=str(out / "lab-2-widget.png"))
        if not report.check("lab: the widget renders", n > 0, f"{n} dropdowns"):
            return
        # no scrolling here: a dropdown that only scrolling its row brings into view is a dropdown the reader misses
        boxes = widget.evaluate(_DROPDOWNS_JS)
        outside = [f"{b['label']}: x = {b['left']:.0f}..{b['right']:.0f}, visible x = {b['clipLeft']:.0f}.."
                   f"{b['clipRight']:.0f}" for b in boxes if not b["inside"]]
        report.check(f"lab: every dropdown is inside the {VIEWPORT['width']} px window, none scrolled off", n > 0
                     and not outside, f"{n} dropdowns in {len({round(b['top']) for b in boxes})} rows, rightmost edge "
                     f"x = {max(b['right'] for b in boxes):.0f} of {VIEWPORT['width']}"
                     + "".join(f"\n    cut off: {o}" for o in outside))

        widget.scroll_into_view_if_needed()
        before = _widget_state(widget)
        first = selects.nth(0)
        label = first.evaluate("s => (s.parentElement.querySelector('label') || {}).textContent || ''")
        option = first.locator("option").nth(1).inner_text()
        first.select_option(index=1)
        after = _wait_for(lambda: (lambda s: s if s["captions"] != before["captions"] else None)(_widget_state(widget)),
                          30) or _widget_state(widget)
        page.screenshot(path=str(out / "lab-3-after-dropdown.png"))
        report.check("lab: changing a dropdown changes the ranking",
                     bool(before["captions"]) and after["captions"] != before["captions"],
                     f"{label} -> {option}: top {len(before['captions'])} {_ids(before['captions'])} -> "
                     f"{_ids(after['captions'])}; {after['status']}")

        likes = widget.locator(".widget-checkbox input[type=checkbox]")
        for i in (0, 1):
            likes.nth(i).check()
        widget.locator("button", has_text="Search again with my picks").click()
        fed = _wait_for(lambda: (lambda s: s if s["weights"].startswith("Eq. 5") else None)(_widget_state(widget)),
                        30) or _widget_state(widget)
        shares = [float(x) for x in re.findall(r": ([0-9.]+)", fed["weights"])]
        widget.locator("button", has_text="Search again with my picks").scroll_into_view_if_needed()
        page.screenshot(path=str(out / "lab-4-after-feedback.png"))
        report.check("lab: the feedback button reweights (Eq. 5) and searches again",
                     len(shares) >= 2 and abs(sum(shares) - 1) < 0.03 and len(set(shares)) > 1,
                     f"{fed['weights']!r}; ranking {_ids(after['captions'])} -> {_ids(fed['captions'])}")
        report.check("lab: nothing is fetched from another host, no console errors", not foreign and not errors,
                     "; ".join((sorted(set(foreign)) + errors)[:5]) or "every request went to 127.0.0.1")
        context.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _ids(captions: list[str]) -> str:
    return "[" + " ".join(c.split()[0] for c in captions) + "]"


# ------------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, default=ROOT / "_build" / "book", help="the built site (make book)")
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "browser-check", help="screenshots go here")
    ap.add_argument("--only", choices=("site", "lab"), help="one half of the check")
    ap.add_argument("--skip-if-no-chromium", action="store_true",
                    help="when Chromium is missing and cannot be installed: say so and exit 0 (CI)")
    ap.add_argument("--install-timeout", type=float, default=600, help="seconds apt-get may take (default 600)")
    ap.add_argument("--run-timeout", type=float, default=600,
                    help="seconds notebook 04 may take to run in JupyterLab (default 600)")
    args = ap.parse_args(argv)

    chromium = find_chromium()
    if chromium is None:
        chromium, why = install_chromium(args.install_timeout)
        if chromium is None:
            msg = f"browser-check SKIPPED: no Chromium ({why}); the site and the widget were not checked in a browser"
            if args.skip_if_no_chromium:
                print(msg)
                return 0
            print(f"browser-check: no Chromium and it could not be installed: {why}", file=sys.stderr)
            return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("browser-check: the playwright package is missing: pip install -e '.[browser]' (or make setup)",
              file=sys.stderr)
        return 2
    if args.only != "lab" and not (args.site / "README.html").is_file():
        print(f"browser-check: {args.site} holds no built site: run make book first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.png"):
        old.unlink()

    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"browser-check: {version or chromium} ({chromium}), window {VIEWPORT['width']}x{VIEWPORT['height']}")
    report, t0 = Report(), time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            if args.only != "lab":
                t = time.monotonic()
                check_site(browser, args.site.resolve(), args.out, report)
                print(f"browser-check: the site took {time.monotonic() - t:.0f} s", flush=True)
            if args.only != "site":
                t = time.monotonic()
                check_lab(browser, args.out, report, args.run_timeout)
                print(f"browser-check: JupyterLab took {time.monotonic() - t:.0f} s", flush=True)
        finally:
            browser.close()
    shots = sorted(p.name for p in args.out.glob("*.png"))
    print(f"browser-check: {len(shots)} screenshots in {args.out}: {', '.join(shots)}")
    print(f"browser-check: {time.monotonic() - t0:.0f} s in all")
    if report.failed:
        print("browser-check: failed: " + "; ".join(report.failed))
    print(f"browser-check: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
