"""The HTML report in headless Chromium: every section and image, no console error, no
network request, user-supplied names shown as text. A screenshot is saved next to the
report (and copied to $REPORT_SCREENSHOT_DIR when set) for a human to look at."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from reports.report import load_results, write_report
from tests.reports.conftest import HOSTILE_DESCRIPTION, HOSTILE_MESSAGE, HOSTILE_MODEL

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs the playwright package (pip install playwright)"
)
if CHROMIUM is None:
    pytest.skip("no Chromium on PATH: install Debian's chromium (scripts/setup.sh with WITH_BROWSER=1)",
                allow_module_level=True)

SECTIONS = ("summary", "modes", "sensitivity", "map", "joints", "progress", "model-errors", "run-details")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    with tempfile.TemporaryDirectory() as profile, playwright.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, offline=True,
        )
        try:
            yield ctx
        finally:
            ctx.close()


def open_report(ctx, html: Path, screenshot: Path) -> tuple:
    page = ctx.new_page()
    events: dict[str, list] = {"console": [], "requests": [], "dialogs": [], "pageerrors": []}
    page.on("console", lambda m: events["console"].append((m.type, m.text)))
    page.on("request", lambda r: events["requests"].append(r.url))
    page.on("pageerror", lambda e: events["pageerrors"].append(str(e)))

    def on_dialog(d):
        events["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.goto(html.resolve().as_uri(), wait_until="load")
    page.screenshot(path=str(screenshot), full_page=True)
    if os.environ.get("REPORT_SCREENSHOT_DIR"):
        dest = Path(os.environ["REPORT_SCREENSHOT_DIR"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, dest / screenshot.name)
    return page, events


def contrast_pictures(run_dir: Path) -> int:
    """How many passing scenes outside a mattering constraint the report renders (up to
    two per constraint that matters; examiner/search/importance.py)."""
    from reports.rundata import load_run

    return sum(min(2, sum(o[0] is False for o in r.get("outcomes") or []))
               for m in load_run(run_dir).modes for r in (m.get("importance") or {}).get("constraints", [])
               if r["matters"])


def check_common(page, events, html: Path, n_modes: int, n_examples: int, n_contrast: int = 0) -> None:
    for sid in SECTIONS:
        sec = page.locator(f"section#{sid}")
        assert sec.count() == 1, f"section {sid} missing"
        assert sec.locator("h2").first.is_visible()
    assert page.locator("article.mode").count() == n_modes
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src.slice(0, 16)])")
    assert len(images) == 2 * n_examples + n_contrast
    assert page.locator(".contrast img").count() == n_contrast
    for complete, width, src in images:
        assert complete and width > 0, f"image not loaded: {src}"
        assert src.startswith("data:image/")
    assert page.evaluate("document.querySelectorAll('svg').length") >= 4
    errors = [t for kind, t in events["console"] if kind in ("error", "warning")]
    assert not errors, f"console: {errors}"
    assert not events["pageerrors"] and not events["dialogs"]
    for url in events["requests"]:
        assert url.startswith(("data:", "file:")), f"network request to {url}"
        if url.startswith("file:"):
            assert url == html.resolve().as_uri()


def test_planted_report_in_chromium(browser, planted_run, tmp_path):
    paths = write_report(planted_run, out_dir=tmp_path)
    res = load_results(paths.results)
    n_examples = sum(len(m["examples"]) for m in res["modes"])
    page, events = open_report(browser, paths.html, tmp_path / "planted_report.png")
    n_contrast = contrast_pictures(planted_run)
    assert n_contrast >= 2  # the planted regions' constraints matter: scenes outside them pass
    check_common(page, events, paths.html, len(res["modes"]), n_examples, n_contrast)
    first = page.locator("article.mode").first
    assert first.locator(".bar-row").count() == len(res["modes"][0]["box"]["constrained"])
    # The card leads with what the failure needs (its constraint test), then what stands out.
    needed = [c["dimension"] for c in res["modes"][0]["importance"]["constraints"] if c["matters"]]
    lead = first.locator("p.desc.needs").inner_text()
    assert lead.startswith("Needs: ") and needed and all(f"({d})" in lead or d in lead for d in needed), lead
    assert first.locator("p.said").inner_text() == "Also typical of the box's scenes: " + res["modes"][0]["description"]
    assert "no stored prediction" in first.locator("figcaption").first.inner_text()
    assert (tmp_path / "planted_report.png").stat().st_size > 10_000


def test_hostile_names_render_as_text(browser, synthetic_run, tmp_path):
    paths = write_report(synthetic_run, out_dir=tmp_path)
    res = load_results(paths.results)
    n_examples = sum(len(m["examples"]) for m in res["modes"])
    page, events = open_report(browser, paths.html, tmp_path / "hostile_report.png")
    check_common(page, events, paths.html, len(res["modes"]), n_examples, contrast_pictures(synthetic_run))
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert page.locator("#model-name").inner_text() == HOSTILE_MODEL
    assert HOSTILE_MODEL in page.title()
    assert HOSTILE_MESSAGE in page.locator("section#model-errors").inner_text()
    assert page.evaluate("document.querySelectorAll('b').length") == 0  # the template uses <strong>
    details = page.locator("section#run-details")
    details.locator("summary").first.click()
    assert HOSTILE_DESCRIPTION in details.inner_text()
    # Stored predictions and per-joint errors are shown.
    assert page.locator("section#joints svg").count() == 1
    cap = page.locator("figcaption").first.inner_text()
    assert "prediction" in cap and "no stored prediction" not in cap and "worst joints" in cap
