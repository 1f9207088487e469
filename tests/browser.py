"""Open a generated report in headless Chromium and check it really works (reusable helper).

Usage in a test::

    from browser import open_report, check_report

    def test_my_report(tmp_path):
        path = write_my_report(tmp_path)
        with open_report(path) as page:        # skips the test when no browser is installed
            state = check_report(page)          # idle, no SEVERE log, no request, WebGL, not blank
            assert state["plots"] >= 2

``open_report`` needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them);
without them, or when the browser cannot start, the calling test is skipped, never failed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    # WebGL without a GPU: Chromium's software rasteriser (SwiftShader) must be allowed
    # explicitly in recent versions, else bokeh falls back to canvas.
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--enable-webgl",
    "--ignore-gpu-blocklist",
    "--window-size=1280,1000",
    "--hide-scrollbars",
]

# Bokeh's state, gathered in the page. A document is idle once every root view has finished
# rendering; views are found through Bokeh.index (root views) and their children.
_STATE_JS = r"""
const out = {bokeh: typeof Bokeh !== "undefined", documents: 0, idle: false, roots: 0, views: 0,
             plots: 0, webgl_plots: 0, webgl_requested: 0, canvases: 0, webgl_canvases: 0,
             resources: [], errors: []};
if (!out.bokeh) { return out; }
try {
  const docs = Bokeh.documents || [];
  out.documents = docs.length;
  out.idle = docs.length > 0 && docs.every(d => d.is_idle);
  const roots = [];
  const idx = Bokeh.index;
  if (idx) {
    for (const v of (idx.roots ? idx.roots : Object.values(idx))) { roots.push(v); }
    if (roots.length === 0 && typeof idx[Symbol.iterator] === "function") { for (const v of idx) roots.push(v); }
  }
  out.roots = roots.length;
  const seen = new Set();
  const walk = (v) => {
    if (!v || seen.has(v)) return;
    seen.add(v);
    out.views += 1;
    const name = v.model && v.model.type;
    if (v.canvas_view !== undefined && v.model && "output_backend" in v.model) {
      out.plots += 1;
      if (v.model.output_backend === "webgl") out.webgl_requested += 1;
      if (v.canvas_view && v.canvas_view.webgl != null) out.webgl_plots += 1;
    }
    const kids = v.child_views || (v.children ? v.children() : null);
    if (kids) { for (const c of kids) walk(c); }
    if (v.renderer_views) { for (const c of v.renderer_views.values()) walk(c); }
  };
  for (const r of roots) walk(r);
} catch (e) { out.errors.push(String(e)); }
const canvases = [];
const collect = (root) => {
  for (const el of root.querySelectorAll("*")) {
    if (el.tagName === "CANVAS") canvases.push(el);
    if (el.shadowRoot) collect(el.shadowRoot);
  }
};
collect(document);
out.canvases = canvases.length;
out.resources = performance.getEntriesByType("resource").map(e => e.name);
return out;
"""


@dataclass
class Page:
    """A report opened in the browser (``driver`` is the selenium WebDriver)."""

    driver: Any
    path: Path
    state: dict[str, Any] = field(default_factory=dict)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def bokeh_state(self) -> dict[str, Any]:
        self.state = self.driver.execute_script(_STATE_JS)
        return self.state

    def wait_idle(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until every Bokeh document reports idle (all root views rendered)."""
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.bokeh_state()
            if state.get("bokeh") and state.get("documents", 0) > 0 and state.get("idle"):
                time.sleep(0.3)  # let the last paint land before screenshots
                return self.bokeh_state()
            time.sleep(0.2)
        raise AssertionError(f"Bokeh did not reach idle within {timeout:.0f} s: {state}")

    def console(self) -> list[dict[str, Any]]:
        """Browser console entries since the last call (selenium drains the log)."""
        try:
            return list(self.driver.get_log("browser"))
        except Exception:  # noqa: BLE001 - some drivers do not expose logs
            return []

    def network_requests(self) -> list[str]:
        """URLs the page requested beyond itself (from Chrome's performance log), plus any
        non-data/blob resource timing entries."""
        urls = []
        try:
            for entry in self.driver.get_log("performance"):
                msg = json.loads(entry["message"])["message"]
                if msg.get("method") == "Network.requestWillBeSent":
                    urls.append(msg["params"]["request"]["url"])
        except Exception:  # noqa: BLE001
            pass
        urls += list(self.state.get("resources", []))
        page = self.path.resolve().as_uri()
        internal = ("data:", "blob:", "about:", "chrome:", "chrome-extension:", "chrome-untrusted:", "devtools:")
        return [u for u in urls if not (u.startswith(internal) or u.split("#")[0] == page)]

    def screenshot(self, out: Path | None = None) -> bytes:
        png = self.driver.get_screenshot_as_png()
        if out is not None:
            Path(out).write_bytes(png)
        return png

    def full_screenshot(self, out: Path, width: int = 1280, max_height: int = 16000) -> bytes:
        """The whole page: resize the window to the document's height first."""
        height = int(self.js("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"))
        self.driver.set_window_size(width, min(max_height, height + 100))
        time.sleep(0.5)
        return self.screenshot(out)

    # -- driving named Bokeh models (the explorer names its models explorer-<role>-<table>)
    _MODEL_JS = (
        "const m = Bokeh.documents.map(d => d.get_model_by_name(arguments[0])).find(x => x);"
        "if (!m) throw new Error('no Bokeh model named ' + arguments[0]);"
    )

    def model_value(self, name: str, prop: str) -> Any:
        return self.js(
            self._MODEL_JS + "const v = m[arguments[1]]; return v instanceof Map ? "
            "Object.fromEntries(v) : (ArrayBuffer.isView(v) ? Array.from(v) : v);",
            name,
            prop,
        )

    def set_model(self, name: str, prop: str, value: Any) -> None:
        self.js(self._MODEL_JS + "m[arguments[1]] = arguments[2];", name, prop, value)

    def source(self, name: str) -> dict[str, list]:
        """A ColumnDataSource's columns as lists."""
        return self.js(
            self._MODEL_JS + "const d = m.data instanceof Map ? Object.fromEntries(m.data) : m.data;"
            "const out = {}; for (const k of Object.keys(d)) out[k] = Array.from(d[k]); return out;",
            name,
        )

    def selected_rows(self, name: str) -> list[int]:
        return self.js(self._MODEL_JS + "return Array.from(m.selected.indices);", name)

    def select_rows(self, name: str, rows: list[int]) -> None:
        """Select rows of a ColumnDataSource as the box or lasso tool does."""
        self.js(self._MODEL_JS + "m.selected.indices = arguments[1];", name, list(rows))

    def widget_input(self, name: str):
        """The <input> element of the TextInput named ``name`` (inside Bokeh's shadow DOM)."""
        return self.js(
            r"""
            const seen = new Set(), views = [];
            const walk = (v) => { if (!v || seen.has(v)) return; seen.add(v); views.push(v);
              for (const c of (v.child_views || [])) walk(c); };
            const idx = Bokeh.index; for (const v of (idx.roots ? idx.roots : Object.values(idx))) walk(v);
            const view = views.find((v) => v.model && v.model.name === arguments[0]);
            return view ? view.input_el : null;""",
            name,
        )

    def type_into(self, name: str, text: str, enter: bool = True) -> None:
        """Type ``text`` into the TextInput named ``name`` key by key, as a person would."""
        from selenium.webdriver.common.keys import Keys

        el = self.widget_input(name)
        assert el is not None, f"no text input named {name}"
        el.clear()
        el.send_keys(text + (Keys.ENTER if enter else ""))

    # -- what the page SHOWS: the rendered DOM of a named Bokeh widget (inside its shadow root)
    _VIEW_JS = r"""
        const seen = new Set(), views = [];
        const walk = (v) => { if (!v || seen.has(v)) return; seen.add(v); views.push(v);
          for (const c of (v.child_views || [])) walk(c);
          if (v.renderer_views) for (const c of v.renderer_views.values()) walk(c); };
        const idx = Bokeh.index; for (const v of (idx.roots ? idx.roots : Object.values(idx))) walk(v);
        const view = views.find((v) => v.model && v.model.name === arguments[0]);
        if (!view) throw new Error('no Bokeh view of a model named ' + arguments[0]);
        const root = view.shadow_el || view.el.shadowRoot || view.el;"""

    def shown_text(self, name: str) -> str:
        """The visible text of the widget named ``name`` (a Div's status line, a legend)."""
        return self.js(
            self._VIEW_JS + "return (root.innerText !== undefined ? root.innerText : "
            "Array.from(root.childNodes).filter((n) => !['STYLE', 'LINK', 'SCRIPT'].includes(n.nodeName))"
            ".map((n) => n.innerText || n.textContent || '').join(' '));",
            name,
        ).strip()

    def shown_box(self, name: str) -> dict[str, float]:
        """Where the view of the model named ``name`` is on screen (CSS pixels, scrolled into view)."""
        return self.js(
            self._VIEW_JS + "view.el.scrollIntoView({block: 'center'}); const r = view.el.getBoundingClientRect();"
            "return {left: r.left, top: r.top, width: r.width, height: r.height};",
            name,
        )

    def shown_pixels(self, name: str):
        """What the page draws of the model named ``name`` (a plot: its canvas), as an RGB array
        cut from a screenshot."""
        import numpy as np
        from PIL import Image

        box = self.shown_box(name)
        time.sleep(0.3)  # the frame after scrolling
        png = Image.open(io.BytesIO(self.screenshot())).convert("RGB")
        scale = png.width / self.js("return window.innerWidth")
        left, top = round(box["left"] * scale), round(box["top"] * scale)
        return np.asarray(png.crop((left, top, left + round(box["width"] * scale), top + round(box["height"] * scale))))

    def shown_labels(self, name: str) -> list[dict[str, Any]]:
        """The texts the plot named ``name`` writes on its canvas (Text glyphs), each with its box
        in canvas pixels: where Bokeh placed it (the glyph view's screen coordinates, offset and
        alignment) and how wide the canvas measures it in the glyph's font."""
        return self.js(
            self._VIEW_JS
            + r"""
            const val = (v) => (v !== null && typeof v === "object" && "value" in v ? v.value : v);
            const ctx = document.createElement("canvas").getContext("2d"), out = [];
            for (const r of view.renderer_views.values()) {
              const g = r.glyph, gm = r.model.glyph;
              if (!g || !gm || gm.type !== "Text" && !(gm.constructor && gm.constructor.__name__ === "Text")) continue;
              if (!r.model.visible || !g.sx) continue;
              const src = r.model.data_source, field = gm.text && gm.text.field;
              if (!field) continue;
              const texts = src.data instanceof Map ? src.data.get(field) : src.data[field];
              const size = parseFloat(val(gm.text_font_size)) * (String(val(gm.text_font_size)).endsWith("pt") ? 4 / 3 : 1);
              ctx.font = `${val(gm.text_font_style) || "normal"} ${val(gm.text_font_size)} ${val(gm.text_font) || "helvetica"}`;
              const dx = Number(val(gm.x_offset)) || 0, align = val(gm.text_align);
              for (let i = 0; i < texts.length; i++) {
                const t = String(texts[i] ?? "");
                if (!t || !isFinite(g.sx[i]) || !isFinite(g.sy[i])) continue;
                const w = ctx.measureText(t).width, x = g.sx[i] + dx;
                const left = align === "left" ? x : align === "right" ? x - w : x - w / 2;
                out.push({text: t, left: left, right: left + w, top: g.sy[i] - size / 2, bottom: g.sy[i] + size / 2,
                          source: src.name});
              }
            }
            return out;""",
            name,
        )

    def truncated_cells(self, name: str, col: int) -> list[str]:
        """Cells of column ``col`` of the DataTable ``name`` whose text is cut (wider than the cell)."""
        return self.js(
            self._VIEW_JS
            + r"""
            const rows = Array.from(root.querySelectorAll('.slick-row')).filter((r) => r.offsetParent !== null);
            return rows.map((r) => r.querySelectorAll('.slick-cell')[arguments[1]]).filter((c) => c &&
              c.scrollWidth > c.clientWidth + 1).map((c) => c.innerText);""",
            name,
            col,
        )

    def clipped_text(self, name: str) -> list[str]:
        """The header titles and drawn cells of the DataTable ``name`` whose text is cut (wider
        than its box, scrolled into view or not)."""
        return self.js(
            self._VIEW_JS
            + r"""
            const cut = (c, inner) => {  // a title's span against its header's padding box (not the resize handle)
              const box = c.getBoundingClientRect(), right = box.right - parseFloat(getComputedStyle(c).paddingRight);
              return inner ? inner.getBoundingClientRect().right > right + 1 : c.scrollWidth > c.clientWidth + 1;
            };
            const heads = Array.from(root.querySelectorAll('.slick-header-column')).filter((c) => c.offsetParent !== null
              && cut(c, c.querySelector('.slick-column-name')));
            const cells = Array.from(root.querySelectorAll('.slick-row .slick-cell')).filter((c) => c.offsetParent !== null
              && cut(c, null));
            return heads.concat(cells).map((c) => c.innerText.trim());""",
            name,
        )

    def shown_rows(self, name: str) -> list[list[str]]:
        """The cells a DataTable named ``name`` draws, row by row from the top (SlickGrid
        positions rows absolutely: sorted by their offset, not their DOM order)."""
        return self.js(
            self._VIEW_JS
            + r"""
            const rows = Array.from(root.querySelectorAll('.slick-row')).filter((r) => r.offsetParent !== null);
            rows.sort((a, b) => parseFloat(a.style.top || "0") - parseFloat(b.style.top || "0"));
            return rows.map((r) => Array.from(r.querySelectorAll('.slick-cell')).map((c) => c.innerText.trim()));""",
            name,
        )

    def shown_column(self, name: str, col: int) -> list[str]:
        return [r[col] for r in self.shown_rows(name) if len(r) > col]

    def click_row(self, name: str, row: int, col: int = 1) -> None:
        """Click cell ``col`` of the ``row``-th drawn row of the DataTable ``name`` (a real click)."""
        el = self.js(
            self._VIEW_JS
            + r"""
            const rows = Array.from(root.querySelectorAll('.slick-row')).filter((r) => r.offsetParent !== null);
            rows.sort((a, b) => parseFloat(a.style.top || '0') - parseFloat(b.style.top || '0'));
            const r = rows[arguments[1]]; return r ? r.querySelectorAll('.slick-cell')[arguments[2]] : null;""",
            name,
            row,
            col,
        )
        assert el is not None, f"table {name} draws no row {row}"
        el.click()

    def click_button(self, name: str) -> None:
        """Click the Button named ``name`` (a real click on its <button>)."""
        el = self.js(self._VIEW_JS + "return root.querySelector('button');", name)
        assert el is not None, f"no button named {name}"
        el.click()

    def wait_for(self, probe, timeout: float = 10.0, what: str = "the page"):
        """Poll ``probe()`` until it returns something truthy (the page redraws asynchronously)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(0.05)
        raise AssertionError(f"{what} did not show the expected state within {timeout:.0f} s (last: {last!r})")

    def text(self, selector: str = "body") -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector).text


def find_browser() -> tuple[str, str] | None:
    """(chromium binary, chromedriver) or None."""
    chrome = (
        os.environ.get("EMBEDLAB_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    driver = os.environ.get("EMBEDLAB_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chrome or not driver:
        return None
    return chrome, driver


@contextlib.contextmanager
def open_report(path: str | Path, width: int = 1280, height: int = 1000, timeout: float = 60.0) -> Iterator[Page]:
    """Open ``path`` in headless Chromium; skip the calling test when no browser is usable."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed")
    found = find_browser()
    if found is None:
        pytest.skip("no chromium/chromedriver installed (apt-get install chromium chromium-driver)")
    chrome, driver_path = found
    profile = tempfile.mkdtemp(prefix="embedlab-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    except Exception as exc:  # noqa: BLE001 - a broken browser install is an environment problem
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium could not start: {str(exc).splitlines()[0][:200]}")
    try:
        driver.set_page_load_timeout(timeout)
        page = Page(driver, Path(path))
        with contextlib.suppress(Exception):
            driver.get_log("performance")  # drain what the browser did before our page
        driver.get(Path(path).resolve().as_uri())
        yield page
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def png_stats(png: bytes) -> dict[str, float]:
    """Size and pixel spread of a PNG screenshot (Pillow comes with Bokeh)."""
    import numpy as np
    from PIL import Image

    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    flat = px.reshape(-1, 3)
    colours = len(np.unique(flat[:: max(1, len(flat) // 200_000)], axis=0))
    return {
        "width": px.shape[1],
        "height": px.shape[0],
        "std": float(px.std()),
        "colours": colours,
        "non_white": float((px.min(axis=2) < 240).mean()),
    }


def check_report(
    page: Page, expect_webgl: bool = True, min_plots: int = 1, timeout: float = 60.0, screenshot: Path | None = None
) -> dict[str, Any]:
    """Assert a report is healthy: Bokeh idle, no SEVERE console entry, no network request,
    WebGL in use where plots asked for it, a screenshot that is not blank. Returns the state."""
    state = page.wait_idle(timeout)
    assert state["errors"] == [], f"error while inspecting Bokeh: {state['errors']}"
    assert state["plots"] >= min_plots, f"expected at least {min_plots} Bokeh plots, found {state}"
    logs = page.console()
    severe = [e for e in logs if e.get("level") == "SEVERE"]
    assert not severe, f"SEVERE console messages: {severe}"
    requests = page.network_requests()
    assert not requests, f"the report made network requests: {requests[:5]}"
    if expect_webgl:
        assert state["webgl_requested"] > 0, "no plot asked for the WebGL backend"
        assert state["webgl_plots"] == state["webgl_requested"], (
            f"WebGL not in use for every plot that asked for it: {state}; console: {logs[-5:]}"
        )
    png = page.screenshot(screenshot)
    stats = png_stats(png)
    assert stats["std"] > 10 and stats["colours"] > 16 and stats["non_white"] > 0.02, (
        f"the screenshot looks blank: {stats}"
    )
    state["screenshot"] = stats
    state["console"] = logs
    return state
