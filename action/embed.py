"""Keeps the GitLab component self-contained: writes action/requirements.lock and action/gitlab_job.py
into templates/crgate.yml, between the here-document lines that carry them, so the job in a user's
project holds the Action's very lock and the helper without fetching either; then writes the template's
``include:integrity`` (``sha256-`` and the base64 of its SHA-256) into README.md and
examples/gitlab/.gitlab-ci.yml, which show it.

    action/embed.py                      rewrite the template and the integrity values (refresh-lock.sh runs this)
    action/embed.py --check              exit 1 if any of them is not what this would write
    action/embed.py --pin-release WHEEL  also pin the install input's default to WHEEL's name, version, sha256

A test runs ``--check``. In the repository the install input's default is ``crgate==VERSION`` with a hash
of 64 zeros, which the job refuses (exit 2, "not pinned to a released file yet"): nobody can install an
unreleased crgate by default. The release step: build the wheel once (``pip wheel --no-deps -w dist .``),
``action/embed.py --pin-release dist/crgate-VERSION-py3-none-any.whl``, commit, tag, publish that very
wheel; the tagged template (and its integrity in the README) then installs exactly that file.
"""

from __future__ import annotations

import argparse
import base64
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
SHOWN_INTEGRITY = (ROOT / "README.md", ROOT / "examples" / "gitlab" / ".gitlab-ci.yml")
INTEGRITY = re.compile(r"(?m)^(\s+integrity: )sha256-[A-Za-z0-9+/=]+$")
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


def integrity(template: str) -> str:
    """GitLab's ``include:integrity`` of this template text (SRI: sha256- and the base64 digest)."""
    return "sha256-" + base64.b64encode(hashlib.sha256(template.encode("utf-8")).digest()).decode()


def with_integrity(text: str, template: str) -> str:
    """``text`` with every ``integrity:`` line naming ``template``'s."""
    return INTEGRITY.sub(lambda m: m.group(1) + integrity(template), text)


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
    changes = [(TEMPLATE, current, wanted)]
    for path in SHOWN_INTEGRITY:
        text = path.read_text(encoding="utf-8")
        changes.append((path, text, with_integrity(text, wanted)))
    stale = [path for path, old, new in changes if old != new]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run action/embed.py", file=sys.stderr)
        return 1 if stale else 0
    for path, _old, new in changes:
        if path in stale:
            path.write_text(new, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
