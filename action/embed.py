"""Keeps the GitLab component self-contained: writes action/requirements.lock and action/gitlab_job.py
into templates/crgate.yml, between the here-document lines that carry them, so the job in a user's
project holds the Action's very lock and the helper without fetching either.

    action/embed.py                      rewrite the template (action/refresh-lock.sh runs this too)
    action/embed.py --check              exit 1 if the template is not what this would write
    action/embed.py --pin-release WHEEL  also pin the install input's default to WHEEL's name, version, sha256

A test runs ``--check``. The release wheel is built once, published, and pinned here by its hash, so a
component at a version installs exactly that version's published file (pip --require-hashes).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "crgate.yml"
INDENT = " " * 6  # the script block's indentation in the template
BLOCKS = (
    ("requirements.lock", "CRGATE_LOCK_END", ROOT / "action" / "requirements.lock"),
    ("gitlab_job.py", "CRGATE_HELPER_END", ROOT / "action" / "gitlab_job.py"),
)
INSTALL_DEFAULT = re.compile(r"(?m)^(    install:\n      description: .*\n      default: ).*$")
WHEEL_NAME = re.compile(r"(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)-[^-]+-[^-]+-[^-]+\.whl")


def embedded(template: str) -> str:
    """The template with each block's here-document body replaced by its file, indented."""
    for target, end, source in BLOCKS:
        text = source.read_text(encoding="utf-8")
        if "$[[" in text or any(line.strip() == end for line in text.splitlines()):
            raise SystemExit(f"{source}: holds '$[[' or a line '{end}', which would break the template")
        body = "".join(f"{INDENT}{line}".rstrip() + "\n" for line in text.splitlines())
        start = f"{INDENT}cat > \"$crgate_job/{target}\" <<'{end}'\n"
        pattern = re.compile(re.escape(start) + r"(?:.*\n)*?" + re.escape(f"{INDENT}{end}\n"))
        if len(pattern.findall(template)) != 1:
            raise SystemExit(f"{TEMPLATE}: no single here-document for {target}")
        template = pattern.sub(lambda _m: start + body + f"{INDENT}{end}\n", template)  # noqa: B023
    return template


def pinned(template: str, wheel: Path) -> str:
    match = WHEEL_NAME.fullmatch(wheel.name)
    if not match:
        raise SystemExit(f"{wheel}: not a wheel file name")
    name = match["name"].replace("_", "-")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return INSTALL_DEFAULT.sub(lambda m: f"{m.group(1)}{name}=={match['version']} --hash=sha256:{digest}", template)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the template is up to date")
    parser.add_argument("--pin-release", type=Path, metavar="WHEEL", help="pin the install input to this wheel")
    args = parser.parse_args()
    current = TEMPLATE.read_text(encoding="utf-8")
    wanted = embedded(current)
    if args.pin_release:
        wanted = pinned(wanted, args.pin_release)
    if args.check:
        if wanted != current:
            print(f"{TEMPLATE} is out of date: run action/embed.py", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        TEMPLATE.write_text(wanted, encoding="utf-8")
        print(f"wrote {TEMPLATE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
