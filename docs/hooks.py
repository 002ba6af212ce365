"""MkDocs hook: pages other branches add (architecture, verdicts, ...) join the navigation when
their files exist, so the navigation never names a missing page (`mkdocs build --strict`)."""

from __future__ import annotations

from pathlib import Path

OPTIONAL_PAGES = {
    "Architecture": "architecture.md",
    "Proofs overview": "proofs.md",
    "Verdicts": "verdicts.md",
    "Blind spots": "blind-spots.md",
    "Security and faults": "security-and-faults.md",
    "Tests": "tests.md",
}


def on_config(config):
    docs = Path(config["docs_dir"])
    present = [{title: page} for title, page in OPTIONAL_PAGES.items() if (docs / page).is_file()]
    if present:
        config["nav"].append({"More": present})
    return config
