"""The docs' relative links resolve, and the README's layout names every module as it is."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md",
         ROOT / "checkpoints" / "README.md"]


def without_code_blocks(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", without_code_blocks(page.read_text()), re.M)}


def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", without_code_blocks(page.read_text())):
            if re.match(r"[a-z]+://", target):
                continue
            file, _, fragment = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists() or (fragment and dest.suffix == ".md" and fragment not in anchors(dest)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_readme_layout_names_every_module():
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Layout"):].split("```")[1]
    listed, parents = set(), []
    for line in filter(str.strip, block.splitlines()):
        indent, name = len(line) - len(line.lstrip()), line.split()[0]
        parents = [(i, n) for i, n in parents if i < indent]
        listed.add("".join(n for _, n in parents) + name)
        if name.endswith("/"):
            parents.append((indent, name))
    modules = {str(p.relative_to(ROOT)) for d in ("mclmcf", "preprocessing") for p in (ROOT / d).rglob("*.py")
               if p.name != "__init__.py" and "assets" not in p.parts}
    assert modules <= listed, sorted(modules - listed)
    gone = sorted(p for p in listed if p.endswith(".py") and not (ROOT / p).exists())
    assert not gone, gone
