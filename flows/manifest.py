"""``BUILD/manifest.json``: the sha256 of every file a build generated.

``xnorvit compile`` and ``xnorvit build`` write the manifest last, inside the
``OUT.partial-*`` directory, just before it is renamed to ``OUT``: a directory
with a manifest is a finished build. ``xnorvit verify`` and ``xnorvit report``
call :func:`check_manifest` first and refuse a build whose generated files
differ from what was recorded (changed, missing or unrecorded files, each
named), so a verification always proves the files it reads.

A deliberate edit (e.g. a hand-patched weight file) is recorded with
``accept_edits=True`` (``--accept-edits``): the manifest takes the files'
current digests and keeps, per edited file, the digest the build wrote
(``edits``), so verification then proves the edited design and can say
which node an edit touched.

Covered: every file under ``BUILD`` except what later steps write there:
``report/`` (report, verification results, Yosys runs), ``sim/`` and
``rtl/sim/`` (simulation work and Verilator builds), ``vivado/`` and
``deploy/`` (Vivado project and PYNQ driver, ``xnorvit bitstream``), and
``manifest.json`` itself.

Schema (``schema_version`` 1)::

    {"schema_version": 1, "algorithm": "sha256",
     "files": {"<path relative to BUILD, / separated>": "<hex digest>", ...},
     "edits": {"<path>": {"built": "<digest or null: added>", "accepted": "<digest or null: removed>"}}}
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["MANIFEST", "EXCLUDED_DIRS", "ManifestError", "generated_files", "digest", "write_manifest",
           "check_manifest", "edited_nodes"]

MANIFEST = "manifest.json"
#: directories (relative to BUILD) written after the build, not covered
EXCLUDED_DIRS = ("report", "sim", "rtl/sim", "vivado", "deploy")
SCHEMA_VERSION = 1


class ManifestError(RuntimeError):
    """A build's files differ from its manifest, or it has none (names the files)."""


def digest(path: os.PathLike | str) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def generated_files(build: os.PathLike | str) -> list[str]:
    """Paths (relative to ``build``, ``/``-separated, sorted) the manifest covers."""
    build = Path(build)
    out = []
    for root, dirs, files in os.walk(build):
        rel = Path(root).relative_to(build).as_posix()
        rel = "" if rel == "." else rel
        dirs[:] = sorted(d for d in dirs if f"{rel}/{d}".lstrip("/") not in EXCLUDED_DIRS)
        for f in files:
            p = f"{rel}/{f}".lstrip("/")
            if p != MANIFEST:
                out.append(p)
    return sorted(out)


def _digests(build: Path) -> dict[str, str]:
    return {p: digest(build / p) for p in generated_files(build)}


def write_manifest(build: os.PathLike | str, edits: dict | None = None) -> dict:
    """Record the digest of every generated file of ``build`` in ``build/manifest.json``.

    Returns:
        the manifest (see module doc).
    """
    build = Path(build)
    m = {"schema_version": SCHEMA_VERSION, "algorithm": "sha256", "files": _digests(build), "edits": edits or {}}
    tmp = build / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(m, indent=1, sort_keys=True) + "\n")
    tmp.replace(build / MANIFEST)
    return m


def _read(build: Path) -> dict:
    p = build / MANIFEST
    if not p.is_file():
        raise ManifestError(f"{build} has no {MANIFEST}: not a finished xnorvit build (an interrupted or "
                            "pre-manifest build); run `xnorvit build` again")
    try:
        m = json.loads(p.read_text())
        files = m["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ManifestError(f"{p} is not a valid manifest; run `xnorvit build` again") from None
    m.setdefault("edits", {})
    return m


def _differences(build: Path, recorded: dict[str, str]) -> tuple[dict[str, str], list[str], list[str], list[str]]:
    now = _digests(build)
    changed = sorted(p for p in recorded if p in now and now[p] != recorded[p])
    missing = sorted(p for p in recorded if p not in now)
    added = sorted(p for p in now if p not in recorded)
    return now, changed, missing, added


def check_manifest(build: os.PathLike | str, accept_edits: bool = False) -> dict:
    """Compare ``build``'s generated files with its manifest.

    Args:
        build: a build directory.
        accept_edits: record the current files instead of refusing them
            (the manifest's ``edits`` then name every file that differs
            from what the build wrote).

    Returns:
        the (possibly re-recorded) manifest.

    Raises:
        ManifestError: no or unreadable manifest; or, without
            ``accept_edits``, files changed, missing or not recorded (the
            message names them, at most 5, and says how to accept them).
    """
    build = Path(build)
    m = _read(build)
    now, changed, missing, added = _differences(build, m["files"])
    if not (changed or missing or added):
        return m
    if not accept_edits:
        parts = []
        for what, names in (("changed", changed), ("missing", missing), ("not recorded", added)):
            if names:
                more = f" (+{len(names) - 5} more)" if len(names) > 5 else ""
                parts.append(f"{what}: {', '.join(names[:5])}{more}")
        raise ManifestError(f"{build}: files differ from {MANIFEST} ({'; '.join(parts)}); rebuild, or pass "
                            "--accept-edits to verify the edited design")
    edits = dict(m["edits"])
    for p in changed + missing + added:
        built = edits.get(p, {}).get("built", m["files"].get(p))
        edits[p] = {"built": built, "accepted": now.get(p)}
    edits = {p: e for p, e in edits.items() if e["built"] != e["accepted"]}  # edited back to the original
    return write_manifest(build, edits)


def edited_nodes(manifest: dict) -> dict[str, list[str]]:
    """Accepted edits grouped by the hardware node they belong to
    (``rtl/nodes/<node>/...``; other files under ``"(build)"``)."""
    out: dict[str, list[str]] = {}
    for p in sorted(manifest.get("edits", {})):
        parts = p.split("/")
        node = parts[2] if len(parts) > 3 and parts[:2] == ["rtl", "nodes"] else "(build)"
        out.setdefault(node, []).append(p)
    return out
