"""Hostile inputs, generated into a folder at test time (nothing big is committed)."""

from __future__ import annotations

from pathlib import Path

TEAM = "a5166fc4-f874-4741-a721-c05ffd9941a5"

HEADER = """version: 1
targets:
  eps:
    type: epsilon
    base_url: http://127.0.0.1:9/never-used
    retailer_team_id: 13c84def-41cb-4f99-a3fc-6788264f79fe
    bearer_token: ${HOSTILE_TOKEN}
    api_key: ${HOSTILE_KEY}
"""


def config(folder: Path, body: str, name: str = "audiences.yaml") -> Path:
    """A config made of the common header and ``body`` (sources, access lists, segments)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + body)
    return path


def segment_with_files(folder: Path, files: dict[str, bytes], *, column: str | None = None) -> Path:
    """One segment whose members come from ``files`` (written as given, byte for byte)."""
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    listed = ", ".join(f"{{path: {n}, column: {column}}}" if column else n for n in files)
    return config(
        folder,
        f"""segments:
  - id: seg-files
    name: From files
    members:
      files: [{listed}]
""",
    )


def billion_laughs(folder: Path) -> Path:
    lines = ["version: 1", 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    prev = "a"
    for name in "bcdefghij":
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
        prev = name
    lines.append(f"segments: *{prev}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def huge_yaml(folder: Path, size: int = 100 * 1024 * 1024) -> Path:
    """A ``size``-byte YAML file, sparse on disk: a valid start, then a hole of zero bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "huge.yaml"
    with path.open("wb") as fh:
        fh.write((HEADER + "segments:\n").encode())
        fh.truncate(size)
    return path


def deep_not(folder: Path, depth: int = 10_000) -> Path:
    """A rule nested ``depth`` levels deep in ``not`` (flow style keeps the file small)."""
    rule = "{not: " * depth + "{attribute: spend, gt: 1}" + "}" * depth
    (folder / "shoppers.csv").parent.mkdir(parents=True, exist_ok=True)
    (folder / "shoppers.csv").write_text("customer_id,spend\nc1,10\nc2,0\n")
    return config(
        folder,
        f"""customer_sources:
  shoppers: {{path: shoppers.csv, id_column: customer_id}}
segments:
  - id: seg-deep
    name: Deep
    members:
      rule: {rule}
""",
    )


def csv_source(folder: Path, data: bytes, rule: str = "{attribute: spend, gt: 1}") -> Path:
    (folder / "shoppers.csv").parent.mkdir(parents=True, exist_ok=True)
    (folder / "shoppers.csv").write_bytes(data)
    return config(
        folder,
        f"""customer_sources:
  shoppers: {{path: shoppers.csv, id_column: customer_id}}
segments:
  - id: seg-rule
    name: By rule
    members:
      rule: {rule}
""",
    )


def access(folder: Path, teams: list[str]) -> Path:
    listed = ", ".join(f'"{t}"' for t in teams)
    return config(
        folder,
        f"""access_lists:
  partners: [{listed}]
segments:
  - id: seg-acl
    name: With access
    access: partners
    members:
      ids: [c1]
""",
    )
