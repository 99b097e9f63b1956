#!/usr/bin/env python3
"""Rewrites imports from the compiler's diagnostics under InternalImportsByDefault and
MemberImportVisibility (Package.swift switches both on for every target).

    swift build --build-tests 2>&1 | scripts/fix-imports.py [--root DIR] [--dry-run]

Reads a build log on stdin and, per file the compiler names:
  - "... is not available due to missing import of defining module 'M'"  -> adds `import M`;
  - "... is imported by this file as 'internal' from 'M'" and
    "... module 'M' was not imported publicly" (a public declaration exposes M) -> `public import M`;
  - "cannot find 'WakeUp' in scope" (a CallSupport type, see TYPES)               -> `import M`;
  - "public import of 'M' was not used in public declarations or inlinable code" -> `import M`.
Run it, build again, repeat until the build is clean (each round only sees the modules that
compiled), then `make format` to order the imports. `--root` maps the compiler's paths: the
wrapper that builds a clone at /work/main prints /work/main/...; pass the clone's directory.
Conditional imports (`#if canImport`) and `@testable` / `@_exported` lines are left alone.
A C type of the platform (`stat`) is reported as from module 'CDispatch': that file gets no
import but a hint, and the `#if canImport(Glibc) import Glibc #elseif canImport(Darwin) ...`
block the other files use, by hand.
"""

import argparse
import os
import re
import sys
from collections import defaultdict

LOCATION = re.compile(r"^(/[^:\s]+\.swift):\d+:\d+: (?:error|warning): (.*)$")
MISSING = re.compile(r"missing import of defining module '(\w+)'")
NOT_PUBLIC = [
    re.compile(r"is imported by this file as 'internal' from '(\w+)'"),
    re.compile(r"module '(\w+)' was not imported publicly"),
    re.compile(r"'(\w+)' was not imported publicly"),
]
# a default argument of a public function uses a declaration of M: the note's location names M
NOT_INLINABLE = re.compile(r"^(\w+)\.[\w.]+:\d+:\d+: note: .* is not '@usableFromInline' or public")
UNUSED_PUBLIC = re.compile(r"public import of '(\w+)' was not used in public declarations")
# Modules the compiler names that a file imports through another: Date and JSONEncoder are
# declared in FoundationEssentials, which Foundation re-exports.
ALIASES = {"FoundationEssentials": "Foundation", "FoundationInternationalization": "Foundation"}
# Types that came along with `@_exported import CallSupport` in CallStore before: a file that
# names them imports CallSupport itself.
TYPES = {"WakeUp": "CallSupport", "Backoff": "CallSupport"}
NOT_FOUND = re.compile(r"cannot find (?:type )?'(\w+)' in scope")
IMPORT = re.compile(r"^(public |internal |package |private |fileprivate )?import (\w+)\s*$")


def collect(lines):
    """Per file: modules to add, to make public, to make internal."""
    wanted = defaultdict(lambda: {"add": set(), "public": set(), "internal": set()})
    last_file = None
    for line in lines:
        m = LOCATION.match(line.strip())
        if m:
            last_file, message = m.group(1), m.group(2)
        elif "note:" in line and last_file:
            # notes ("struct 'X' is imported by this file as 'internal' from 'M'") follow their error
            message = line
        else:
            continue
        entry = wanted[last_file]
        if mm := MISSING.search(message):
            entry["add"].add(ALIASES.get(mm.group(1), mm.group(1)))
        if mm := NOT_INLINABLE.match(line.strip()):
            entry["public"].add(ALIASES.get(mm.group(1), mm.group(1)))
        for pattern in NOT_PUBLIC:
            if mm := pattern.search(message):
                entry["public"].add(ALIASES.get(mm.group(1), mm.group(1)))
        if (mm := NOT_FOUND.search(message)) and mm.group(1) in TYPES:
            entry["add"].add(TYPES[mm.group(1)])
        if mm := UNUSED_PUBLIC.search(message):
            entry["internal"].add(mm.group(1))
    return wanted


def insertion_point(lines):
    """After the last top-level unconditional import; else after a leading `//` header."""
    last = None
    depth = 0
    for i, line in enumerate(lines):
        if line.startswith("#if"):
            depth += 1
        elif line.startswith("#endif"):
            depth -= 1
        elif depth == 0 and IMPORT.match(line) or line.startswith("@testable import"):
            last = i
    if last is not None:
        return last + 1, False
    i = 0
    while i < len(lines) and lines[i].startswith("//") and not lines[i].startswith("///"):
        i += 1
    return i, True


def rewrite(path, entry, dry_run):
    with open(path) as f:
        lines = f.read().split("\n")
    existing = {}
    for i, line in enumerate(lines):
        m = IMPORT.match(line)
        if m:
            existing.setdefault(m.group(2), i)
    changes = []
    public = entry["public"] - entry["internal"] if entry["internal"] & entry["public"] else entry["public"]
    for module in sorted(public):
        if module in existing:
            i = existing[module]
            new = f"public import {module}"
            if lines[i] != new:
                lines[i] = new
                changes.append(new)
        else:
            entry["add"].discard(module)
            at, blank = insertion_point(lines)
            lines[at:at] = [f"public import {module}"] + ([""] if blank else [])
            existing = {m: (j if j < at else j + 1 + blank) for m, j in existing.items()}
            existing[module] = at
            changes.append(f"+public import {module}")
    for module in sorted(entry["internal"] - public):
        i = existing.get(module)
        if i is not None and lines[i].startswith("public import"):
            lines[i] = f"import {module}"
            changes.append(f"import {module}")
    for module in sorted(entry["add"]):
        if module in existing:
            continue
        if module == "CDispatch":
            print(f"{path}: needs the platform C library: add the #if canImport(Glibc) block by hand")
            continue
        at, blank = insertion_point(lines)
        lines[at:at] = [f"import {module}"] + ([""] if blank else [])
        existing = {m: (j if j < at else j + 1 + blank) for m, j in existing.items()}
        existing[module] = at
        changes.append(f"+import {module}")
    if changes:
        print(f"{path}: {', '.join(changes)}")
        if not dry_run:
            with open(path, "w") as f:
                f.write("\n".join(lines))
    return bool(changes)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", help="the clone's directory, for paths the build printed under /work/main")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    changed = 0
    for path, entry in collect(sys.stdin).items():
        local = path
        if args.root and path.startswith("/work/main/"):
            local = os.path.join(args.root, path[len("/work/main/"):])
        if not os.path.exists(local) or "/.build/" in local:
            continue
        changed += rewrite(local, entry, args.dry_run)
    print(f"{changed} file(s) changed", file=sys.stderr)


if __name__ == "__main__":
    main()
