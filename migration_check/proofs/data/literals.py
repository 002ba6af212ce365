"""The value seeded into one column: a text literal for its type, per profile and token.

Owns: `column_literal` and the generators behind it, one family per group of PostgreSQL types
(text, numbers, dates and times, network, geometry, ranges and multiranges, bit strings, XML,
hstore, text search, JSON and JSON paths, LSNs and snapshots, enums, arrays of any of those;
a domain is described by its base type). Profiles: "typical" (ordinary data), "max" (the upper
edges: strings at their maximum length in non-ASCII text, the largest decimals, far dates, wide
ranges) and "min" (the lower edges: empty strings, zero, old dates, empty ranges). The token
makes a value distinct: the seeder passes one per cell (row and column), so two columns of one
row, and two rows of one column, never get the same ordinary value by construction.

Pure: no database.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import uuid
from collections.abc import Callable, Sequence

from ...postgres.catalog import ColumnMeta

# Max-profile text: non-ASCII, with what stresses quoting and encoding in SQL, COPY and dumps
# (quotes, backslash, tab, newline, a character outside the BMP), each one character long.
NON_ASCII = "Ωé漢🦄'ß\"€\\ñ\nØ\tж"
INTEGER_EDGES = {"int2": 32000, "int4": 2_000_000_000, "int8": 9_000_000_000_000_000_000, "oid": 4_000_000_000}
TEXT_TYPES = ("varchar", "bpchar", "text", "citext", "name", "refcursor")
DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# Array element delimiters other than "," (pg_type.typdelim).
ARRAY_DELIMITERS = {"box": ";"}


def base36(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = DIGITS36[digit] + text
        if not number:
            return text


def sized_text(length: int | None, profile: str, token: int, name: str = "") -> str:
    """Text for a column of `length` characters (None: unlimited) that stays unique per token.

    Typical text is the token (base 36) and the column's name ("1k9 title café"), so two
    columns of one row never hold the same text; a short column keeps the distinct part first.
    """
    if profile == "min":
        return ""
    suffix = base36(token)
    if profile == "typical":
        text = f"{suffix} {name or 'Sample'} café"
        return text[:length] if not length or length >= len(suffix) else suffix[-length:]
    size = length or 2000
    body = (NON_ASCII * (size // len(NON_ASCII) + 1))[: max(size - len(suffix), 0)]
    return (body + suffix)[:size] if size >= len(suffix) else suffix[-size:]


def array_literal(items: Sequence[str], delimiter: str = ",") -> str:
    """A PostgreSQL array literal of text items, each quoted (so commas, quotes, braces stay data)."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + delimiter.join(quoted) + "}"


def number_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    name = column.type_name
    if name in INTEGER_EDGES:
        edge = INTEGER_EDGES[name]
        return str({"typical": token % edge, "max": edge - token % 1000, "min": 0}[profile])
    if name in ("xid", "xid8"):
        return str({"typical": token % 4_000_000_000, "max": 4_000_000_000, "min": 0}[profile])
    if name == "money":
        return {"typical": f"{token % 10 ** 12}.99", "max": "90000000000000000.00", "min": "0"}[profile]
    if name == "numeric":
        if column.precision:
            digits, scale = column.precision
            largest = "9" * (digits - scale) + ("." + "9" * scale if scale else "")
            typical = f"{token % 10 ** max(digits - scale, 0)}" + ("." + "5" * scale if scale else "")
            return {"typical": typical, "max": largest or "0", "min": "0"}[profile]
        return {"typical": f"{token}.25", "max": "12345678901234567890.123456789", "min": "0"}[profile]
    if name in ("float4", "float8"):
        return {"typical": f"{token % 10 ** 6}.5", "max": "3.0e38" if name == "float4" else "1.0e300",
                "min": "0"}[profile]
    return None


def typical_date(token: int) -> datetime.date:
    return datetime.date(2024, 1, 1) + datetime.timedelta(days=token % 3000)


def typical_timestamp(token: int) -> datetime.datetime:
    return datetime.datetime(2024, 1, 1, 12, 34, 56, 123456) + datetime.timedelta(hours=token % 200_000)


def time_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    name = column.type_name
    if name == "date":
        return {"typical": typical_date(token).isoformat(), "max": "2999-12-31", "min": "1900-01-01"}[profile]
    if name in ("timestamp", "timestamptz"):
        return {"typical": typical_timestamp(token).isoformat() + "+00", "max": "2999-12-31 23:59:59.999999+00",
                "min": "1900-01-01 00:00:00+00"}[profile]
    if name in ("time", "timetz"):
        zone = "+05:30" if name == "timetz" else ""  # an offset other than UTC must survive too
        seconds = token % 86400
        typical = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return {"typical": typical + zone, "max": "23:59:59.999999", "min": "00:00:00"}[profile]
    if name == "interval":
        return {"typical": f"{token % 1000} days {token % 24:02d}:03:04", "max": "36500 days", "min": "0"}[profile]
    return None


def range_bounds(subtype: str, token: int) -> tuple[str, str] | None:
    """Two ordinary bounds of a range over `subtype` (ranges of different tokens do not overlap)."""
    if subtype in ("int4", "int8"):
        low = token % (200_000_000 if subtype == "int4" else 10 ** 17) * 10
        return str(low), str(low + 5)
    if subtype == "num":
        low = token % 1_000_000_000 * 10
        return f"{low}.5", f"{low + 5}.25"
    if subtype == "date":
        start = datetime.date(2000, 1, 1) + datetime.timedelta(days=token % 30_000 * 2)
        return start.isoformat(), (start + datetime.timedelta(days=1)).isoformat()
    if subtype in ("ts", "tstz"):
        start = datetime.datetime(2000, 1, 1) + datetime.timedelta(hours=token % 2_000_000 * 2)
        zone = "+00" if subtype == "tstz" else ""
        return start.isoformat() + zone, (start + datetime.timedelta(minutes=90)).isoformat() + zone
    return None


RANGE_TYPES = {f"{sub}{kind}": sub for sub in ("int4", "int8", "num", "date", "ts", "tstz")
               for kind in ("range", "multirange")}


def range_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    """Ranges: a small one (typical), unbounded on both sides (max), empty (min); multiranges hold
    two ranges (typical), one unbounded (max), none (min)."""
    subtype = RANGE_TYPES.get(column.type_name)
    if subtype is None:
        return None
    multi = column.type_name.endswith("multirange")
    bounds = range_bounds(subtype, token)
    assert bounds is not None
    single = f"[{bounds[0]},{bounds[1]})"
    if profile == "typical":
        if not multi:
            return single
        later = range_bounds(subtype, token + 1_000_003)
        assert later is not None
        return "{" + single + f",[{later[0]},{later[1]})" + "}"
    if profile == "max":
        return "{(,)}" if multi else "(,)"
    return "{}" if multi else "empty"


def geometry_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    """Points, lines, segments, boxes, paths, polygons and circles: ordinary coordinates from
    the token (typical), coordinates near the float8 limits (max), everything at zero (min)."""
    x = {"typical": str(token % 10 ** 9), "max": "1e+300", "min": "0"}[profile]
    y = {"typical": "0.5", "max": "-1e+300", "min": "0"}[profile]
    shapes = {
        "point": f"({x},{y})",
        "line": f"{{1,-1,{x}}}" if profile != "min" else "{1,0,0}",
        "lseg": f"[(0,0),({x},{y})]",
        "box": f"({x},{y}),(0,0)",
        "path": f"[(0,0),({x},{y}),(1,1)]" if profile != "min" else "[(0,0)]",
        "polygon": f"((0,0),({x},{y}),(1,0))" if profile != "min" else "((0,0))",
        "circle": f"<({x},{y}),{'1' if profile != 'max' else '1e+300'}>" if profile != "min" else "<(0,0),0>",
    }
    return shapes.get(column.type_name)


def bit_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    """bit(n): exactly n bits; bit varying(n): up to n (64 when unlimited), empty at the minimum."""
    if column.type_name not in ("bit", "varbit"):
        return None
    fixed = column.type_name == "bit"
    size = column.length or (1 if fixed else 64)
    if profile == "max":
        return "1" * size
    if profile == "min":
        return "0" * size if fixed else ""
    bits = format(token, "b")
    return (bits[-size:] if len(bits) >= size else bits.rjust(size, "0")) if fixed else bits[-size:]


def markup_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    """XML, hstore and text search: each with the characters that need escaping at the max."""
    name = column.type_name
    if name == "xml":
        return {"typical": f'<note n="{token}">sample</note>',
                "max": f'<note n="{token}" q="&quot;\'&amp;&lt;">{NON_ASCII.replace("<", "")} &amp; '
                       "<![CDATA[<raw>]]></note>",
                "min": ""}[profile]
    if name == "hstore":
        return {"typical": f'"note"=>"sample {token}"',
                "max": f'"ключ"=>"Ωé漢🦄 \\"quoted\\" {token}", "empty"=>"", "none"=>NULL',
                "min": ""}[profile]
    if name == "tsvector":
        return {"typical": f"'row{token}':1 'sample':2", "max": f"'Ωé漢':1A,2B 'O''Brien':3C 'row{token}':4D",
                "min": ""}[profile]
    if name == "tsquery":
        return {"typical": f"'row{token}' & 'sample'", "max": f"'Ωé漢' & !'O''Brien' | 'row{token}':*",
                "min": ""}[profile]
    return None


def other_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    name = column.type_name
    if name == "bool":
        return "true" if profile != "min" else "false"
    if name == "uuid":
        return str(uuid.UUID(int=(0x7E57 << 112) + token % (1 << 100)))
    if name in ("json", "jsonb"):
        return {"typical": json.dumps({"note": f"sample {token}"}),
                "max": json.dumps({"ключ": sized_text(500, "max", token), "big": 12345678901234567890,
                                   "nested": {"list": [1, 2.5, None, True]}}, ensure_ascii=False),
                "min": "{}"}[profile]
    if name == "jsonpath":
        return {"typical": f"$.note[{token % 1000}]", "max": '$."ключ"[*] ? (@ like_regex "^Ω.*" flag "i")',
                "min": "$"}[profile]
    if name == "bytea":  # max: every byte value, NUL and backslash included
        return {"typical": "\\x00" + format(token % (1 << 32), "08x") + "ff",
                "max": "\\x" + bytes(range(256)).hex() + format(token % (1 << 32), "08x"), "min": "\\x"}[profile]
    if name in ("inet", "cidr"):
        if profile == "max":  # an IPv6 address in the documentation prefix, distinct per token
            return str(ipaddress.IPv6Address((0x20010DB8 << 96) + token % (1 << 64))) if name == "inet" \
                else "2001:db8::/32"
        return f"192.0.2.{token % 250}" if name == "inet" else f"10.{token >> 8 & 0xFF}.{token & 0xFF}.0/24"
    if name in ("macaddr", "macaddr8"):
        octets = [token >> shift & 0xFF for shift in (16, 8, 0)]
        tail = ":".join(f"{octet:02x}" for octet in octets)
        return f"08:00:2b:{tail}" if name == "macaddr" else f"08:00:2b:{tail}:04:05"
    if name == "pg_lsn":
        return {"typical": f"{token % (1 << 32):X}/{token % 4096:X}", "max": "FFFFFFFF/FFFFFFFF",
                "min": "0/0"}[profile]
    if name in ("pg_snapshot", "txid_snapshot"):
        low = token % 1_000_000 + 10
        return {"typical": f"{low}:{low + 5}:{low + 2}", "max": "9000000000000000000:9000000000000000000:",
                "min": "1:1:"}[profile]
    if name == "char":  # the one-byte "char" type
        return {"typical": DIGITS36[10 + token % 26], "max": "~", "min": "!"}[profile]
    return None


FAMILIES: tuple[Callable[[ColumnMeta, str, int], str | None], ...] = (
    number_literal, time_literal, range_literal, geometry_literal, bit_literal, markup_literal, other_literal)


def column_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    """A text literal for `column` (cast to its type by the INSERT), or None when the seeder
    has no value for its type (SQL NULL)."""
    if column.category == "A":  # min: empty; typical: one element; max: the max element and a typical one
        element = column.element()
        items = [] if profile == "min" else [column_literal(element, profile, token)]
        if profile == "max":
            items.append(column_literal(element, "typical", token))
        if None in items:
            return None
        return array_literal([item for item in items if item is not None],
                             ARRAY_DELIMITERS.get(element.type_name, ","))
    if column.enum_labels:
        labels = column.enum_labels
        return {"typical": labels[token % len(labels)], "max": labels[-1], "min": labels[0]}[profile]
    if column.type_name in TEXT_TYPES:
        return sized_text(column.length, profile, token, column.name)
    for literal in FAMILIES:
        value = literal(column, profile, token)
        if value is not None:
            return value
    return None
