"""The fingerprints' digest (data/fingerprints.py `digest`): pure, no database."""

from __future__ import annotations

import copy

from migration_check.proofs.data.fingerprints import TableFingerprint, digest

A = "0cc175b9c0f1b6a831c399e269772661"  # md5("a"), as value_hash writes a cell
B = "92eb5ffee6ae2fec3ad71c777531578f"


def fingerprint() -> dict[str, TableFingerprint]:
    return {"shop_tag": TableFingerprint(["id", "name"], ["id"], {"1": {"id": A, "name": A}, "2": {"id": B, "name": B}},
                                         {"id": "integer NOT NULL", "name": "text"}),
            "shop_item": TableFingerprint(["id"], ["id"], {}, {"id": "integer NOT NULL"})}


def test_the_same_rows_give_the_same_digest_in_any_order():
    rows = {"2": {"name": B, "id": B}, "1": {"name": A, "id": A}}
    reordered = {"shop_item": fingerprint()["shop_item"],
                 "shop_tag": TableFingerprint(["id", "name"], ["id"], rows, {"name": "text", "id": "integer NOT NULL"})}
    assert digest(reordered) == digest(fingerprint())
    assert len(digest(fingerprint())) == 64 and int(digest(fingerprint()), 16) >= 0


def test_a_changed_cell_row_or_type_changes_the_digest():
    cell, row, kind = (copy.deepcopy(fingerprint()) for _ in range(3))
    cell["shop_tag"].rows["2"]["name"] = A
    del row["shop_tag"].rows["2"]
    kind["shop_tag"].types["name"] = "text NOT NULL"
    assert len({digest(fingerprint()), digest(cell), digest(row), digest(kind)}) == 4
