"""The docs' tables of measured figures are what tools/docs.py writes from benchmarks/results/."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_docs_tables_are_generated_from_the_results():
    r = subprocess.run([sys.executable, str(REPO / "tools" / "docs.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_stale_table_is_caught(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "tools"))
    import docs
    page = tmp_path / "page.md"
    page.write_text("x\n<!-- table: learnability -->\n| typed | by hand |\n<!-- /table -->\n")
    monkeypatch.setattr(docs, "PAGES", [page])
    assert docs.rewrite(page.read_text()) != page.read_text()


# ---- links ------------------------------------------------------------------------------------

import re  # noqa: E402

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
# Written by a study, not committed: a link there must name a file the package writes.
OUTPUTS = ("results/", "report/")
# Pages merged from other branches; remove a name once its page is in the tree.
PENDING = set()


def links(text: str):
    """(path, anchor) of every relative link in a page's text, outside code blocks and spans."""
    text = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", text, flags=re.S))
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if not re.match(r"[a-z]+:", target):   # http:, https:, mailto: are not checked
            path, _, anchor = target.partition("#")
            yield path, anchor


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def package_writes(name: str) -> bool:
    return any(name in f.read_text(encoding="utf-8") for f in (REPO / "lib" / "petaction").rglob("*.py"))


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """What is wrong with a page's relative links (``text``: the page's text, if not the file's)."""
    bad = []
    for path, anchor in links(page.read_text(encoding="utf-8") if text is None else text):
        target = (page.parent / path).resolve() if path else page
        rel = target.relative_to(REPO).as_posix() if target.is_relative_to(REPO) else str(target)
        if target.exists():
            if anchor and target.suffix == ".md" and anchor not in anchors(target):
                bad.append(f"{path}#{anchor} (no such heading)")
        elif rel.startswith(OUTPUTS):
            if not package_writes(target.name):
                bad.append(f"{path} (no module writes {target.name})")
        elif rel not in PENDING:
            bad.append(f"{path} (no such file)")
    return bad


def test_every_relative_link_points_to_a_file():
    bad = {page.relative_to(REPO).as_posix(): b for page in PAGES if (b := broken_links(page))}
    assert not bad, bad


def test_a_broken_link_is_caught():
    text = ("[a](study.md) [b](no_such_page.md) [c](gpu.md#no-such-heading) [d](gpu.md#resume) "
            "[e](../results/x/evaluation/no_such_figure.png) [f](../results/x/evaluation/pareto.png) "
            "`[g](in_code.md)` [h](https://example.com/x.md)\n")
    found = broken_links(REPO / "docs" / "study.md", text)
    assert [f.split(" ")[0] for f in found] == [
        "no_such_page.md", "gpu.md#no-such-heading", "../results/x/evaluation/no_such_figure.png"]
