"""What the sdist and the wheel in DIST hold, against the source tree (run by wheel_check.sh).

The wheel must hold every file of the package folder (``overnet/``, caches aside), the
``overnet`` console script and the extras pyproject.toml declares; the sdist exactly the
package, the files MANIFEST.in names and what setuptools generates. Prints one line per
problem and exits 1 when there is any.

Usage: python .ci/check_dists.py DIST [ROOT]
"""

from __future__ import annotations

import email.parser
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as pip vendors it
    from pip._vendor import tomli as tomllib

#: files every sdist holds besides the package and MANIFEST.in's: setuptools makes them
SDIST_GENERATED = {"PKG-INFO", "setup.cfg"}
SDIST_EXTRA = {"README.md", "LICENSE", "pyproject.toml", "MANIFEST.in", "constraints/ci.txt"}


def package_files(root: Path) -> set[str]:
    """Every file under overnet/ as a posix path from ``root``, caches left out."""
    return {
        p.relative_to(root).as_posix()
        for p in (root / "overnet").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


def check_wheel(wheel: Path, root: Path, project: dict) -> list[str]:
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"overnet-{project['version']}.dist-info"
        metadata = email.parser.Parser().parsestr(zf.read(f"{info}/METADATA").decode())
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    missing = sorted(package_files(root) - names)
    problems += [f"wheel: {name} is not in {wheel.name}" for name in missing]
    strays = sorted(n for n in names if not n.startswith(("overnet/", f"{info}/")))
    problems += [f"wheel: {name} does not belong in {wheel.name}" for name in strays]
    extras = set(metadata.get_all("Provides-Extra") or [])
    for extra in sorted(set(project["optional-dependencies"]) - extras):
        problems.append(f"wheel: the extra {extra} is not in its metadata")
    if "overnet = overnet.cli:main" not in entry_points:
        problems.append("wheel: no `overnet` console script (overnet.cli:main)")
    return problems


def check_sdist(sdist: Path, root: Path, project: dict) -> list[str]:
    top = f"overnet-{project['version']}"
    with tarfile.open(sdist) as tf:
        members = [m for m in tf.getmembers() if m.isfile()]
    names = {PurePosixPath(m.name).relative_to(top).as_posix() for m in members}
    names = {n for n in names if not n.startswith("overnet.egg-info/")}
    wanted = package_files(root) | SDIST_EXTRA | SDIST_GENERATED
    problems = [f"sdist: {name} is not in {sdist.name}" for name in sorted(wanted - names)]
    problems += [f"sdist: {n} does not belong in {sdist.name}" for n in sorted(names - wanted)]
    return problems


def main(dist: Path, root: Path) -> int:
    project = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}")
        return 1
    problems = check_wheel(wheels[0], root, project) + check_sdist(sdists[0], root, project)
    for problem in problems:
        print(problem)
    if not problems:
        count = len(package_files(root))
        print(f"{wheels[0].name} and {sdists[0].name} hold the {count} package files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else ".")))
