"""Where the packaged templates and static files live."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "app" / "static"
DEMO_DATA_DIR = ROOT / "app" / "demo_data"
