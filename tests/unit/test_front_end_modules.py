"""The front end is native ES modules with one chart module and one DOM/API helper module: page
scripts load as modules and import what they use, and no page keeps its own palette or its own
list of keys that are not curves (three copies of those had drifted apart)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "app" / "static"
TEMPLATES = ROOT / "templates"


def test_every_page_script_is_a_module() -> None:
    tags = [m for p in TEMPLATES.rglob("*.html")
            for m in re.findall(r"<script[^>]*src=\"/static/[^\"]+\"[^>]*>", p.read_text())]
    page_scripts = [t for t in tags if "/static/vendor/" not in t]
    assert page_scripts and all('type="module"' in t for t in page_scripts), page_scripts


def test_no_globals_between_scripts() -> None:
    for path in STATIC.glob("*.js"):
        assert not re.search(r"window\.\w+\s*=", path.read_text()), path.name


def test_palette_and_curve_rule_live_in_the_chart_module_only() -> None:
    for path in STATIC.glob("*.js"):
        text = path.read_text()
        if path.name == "charts.js":
            assert "PALETTE" in text and "NOT_CURVES" in text
            continue
        assert "_per_second$" not in text, path.name  # the NOT_CURVES rule, copied
        assert len(re.findall(r'"#[0-9a-f]{6}"', text)) < 3, f"{path.name} keeps its own palette"


def test_imports_name_modules_that_export_them() -> None:
    for path in STATIC.glob("*.js"):
        for names, module in re.findall(r"import \{([^}]+)\} from \"/static/(\w+\.js)\"",
                                        path.read_text()):
            exported = (STATIC / module).read_text()
            for name in (n.strip() for n in names.split(",")):
                assert re.search(rf"export (const|function) {name}\b", exported), (path, name)
