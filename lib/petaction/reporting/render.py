"""Render an executed report notebook to HTML (nbconvert, code hidden) and PDF (Chromium).

nbconvert's own `webpdf` exporter cannot use a system Chromium (it has no executable-path
setting and tries to download one), so the HTML is printed by headless Chromium instead.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..core import atomic

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags for a headless, offline, root-run Chromium (no background traffic on a closed network).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


# Every table fits the page: fixed layout at the full width, cells wrapping (a long word breaks
# rather than running past the edge), a smaller type; the report also splits a table wider
# than report.MAX_COLUMNS. Without this, the printed PDF cut wide tables at the right margin.
PAGE_CSS = """<style>
.jp-RenderedHTMLCommon table, table { table-layout: fixed !important; width: 100% !important; max-width: 100%;
  font-size: 9pt !important; }
.jp-RenderedHTMLCommon th, .jp-RenderedHTMLCommon td, th, td { white-space: normal !important;
  overflow-wrap: break-word; word-break: normal; padding: 0.25em 0.4em !important; text-align: left !important; }
.jp-OutputArea-output, .jp-RenderedHTMLCommon { overflow: visible !important; max-width: 100%; }
@media print { img { max-width: 100% !important; } }
</style>
"""


def to_html(notebook: Path, html: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    body = body.replace("</head>", PAGE_CSS + "</head>", 1)
    html.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(html, body)
    return html


def chromium() -> str:
    exe = os.environ.get("PETACTION_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if not exe:
        raise FileNotFoundError("no Chromium found to print the PDF: install Debian's `chromium` "
                                "(make setup does) or set PETACTION_CHROMIUM to a Chromium executable")
    return exe


def run_chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def to_pdf(html: Path, pdf: Path) -> Path:
    tmp = pdf.with_suffix(".pdf.partial")
    res = run_chromium("--no-pdf-header-footer", f"--print-to-pdf={tmp}", html.resolve().as_uri())
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise RuntimeError(f"Chromium did not print {pdf}: {res.stderr[-500:]}")
    os.replace(tmp, pdf)
    return pdf


def screenshot(html: Path, png: Path, size=(1200, 2400)) -> Path:
    run_chromium(f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", html.resolve().as_uri())
    return png


def page_text(html: Path) -> str:
    """The DOM after Chromium rendered the page (what a reader's browser shows)."""
    return run_chromium("--dump-dom", html.resolve().as_uri()).stdout
