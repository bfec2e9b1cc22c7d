"""Write the Python-visible names of the real TensorRT bindings to ``tensorrt-<major>.txt``.

TensorRT's Python module is a pybind11 extension, ``tensorrt_bindings/tensorrt.so`` in the
``tensorrt-cu12-bindings`` (10.x) and ``tensorrt-cu13-bindings`` (11.x) wheels, plus a
package ``__init__.py``. It cannot be imported without CUDA and the TensorRT libraries, but
each name it registers (class, method, property, enum member, keyword argument) is a C
string that the binding code loads with a RIP-relative ``lea`` just before it hands it to
pybind11. With the standard library only, this script reads:

1. the ELF section and symbol tables of the ``.so`` (it is not stripped);
2. every ``lea r64, [rip+disp32]`` and ``call rel32`` in each function (found by their byte
   patterns and kept only when they make sense: a call lands on a function symbol, a lea on
   a printable NUL-terminated string in ``.rodata``), so each function becomes an ordered
   list of "loads string S" / "calls function F" events;
3. bare names: each identifier (``[A-Za-z_][A-Za-z0-9_]*``) that code loads, or that is a
   whole string in ``.rodata`` outside the C++ type names (``_ZTS*``). Both are needed: the
   linker stores a string that ends another one inside it (a lea may point into the middle
   of a longer string), and some strings are reached as base + offset;
4. qualified names ``Class.member``: the events of each ``tensorrt::bind*`` function
   (bindCore, bindGraph, ...) and of the module init that calls them are walked in code
   order, with calls into pybind11's ``class_<...>``/``enum_<...>`` members expanded in
   place (GCC clones those per call site, ``.constprop``, and a clone loads the name
   itself). Each call of ``generic_type::initialize``, which every ``py::class_`` and
   ``py::enum_`` constructor runs, opens a class named by the last identifier loaded before
   it; each identifier loaded after it, until the next class or the end of the function,
   is recorded as ``Class.name``. ``enum_base::export_values`` closes a nested enum
   (``ILogger.Severity``): its members are copied to the class it is nested in, which the
   code after it goes on defining;
5. the package ``__init__.py`` (parsed with ``ast``): module-level functions and variables
   (``__version__``, ``nptype``), ``Class.attr = ...`` (``DataType.itemsize``,
   ``Logger.Severity``) and ``for ... in E.__members__.items(): setattr(C, ...)``
   (``Logger.WARNING``).

So ``Class.member`` means "registered while binding Class": a method, property or enum
member, but also a keyword-argument name (``Runtime.serialized_engine``), a pybind11 enum
internal (``BuilderFlag.value``) or a module attribute set right after the class
(``DataType.float16`` is ``tensorrt.float16``). A class's inherited members are listed
under its base only, and enum values are not read. A bare name only says that the string is
in the binding. Each list is sorted, one name a line, after one ``#`` header line naming
the wheel and the command that wrote the list.

Usage (from the repository root; needs pip and access to PyPI unless given wheels)::

    python tests/export/tensorrt/names/extract_names.py              # newest 10.x and 11.x
    python tests/export/tensorrt/names/extract_names.py --version 10.16.1.11
    python tests/export/tensorrt/names/extract_names.py path/to/tensorrt_cu13_bindings-*.whl
"""

from __future__ import annotations

import argparse
import ast
import bisect
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = "tests/export/tensorrt/names/extract_names.py"
#: the bindings wheel of each TensorRT major: 10.x is built for CUDA 12, 11.x for CUDA 13
PACKAGES = {10: "tensorrt-cu12-bindings", 11: "tensorrt-cu13-bindings"}
#: the wheel's interpreter: 3.11 (the project's), else another CPython
PYTHONS = ("3.11", "3.12", "3.13", "3.10", "3.14")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*\Z")
#: lea r64, [rip+disp32] (REX.W, optional REX.R; ModRM mod=00 rm=101) or call rel32
INSN = re.compile(rb"(?=[\x48\x4c]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]|\xe8)", re.S)
#: run by every pybind11 class_/enum_ constructor
INITIALIZE = "_ZN8pybind116detail12generic_type10initializeERKNS0_11type_recordE"
EXPORT_VALUES = "_ZN8pybind116detail9enum_base13export_valuesEv"
#: pybind11 class_<T>/enum_<T> members, expanded where they are called
EXPAND = re.compile(r"_ZN8pybind11(?:6class_|5enum_)I")
BIND = re.compile(r"_ZN8tensorrt\d+bind[A-Za-z0-9]+ERN8pybind117module_E\Z")
ENUM_MEMBER = re.compile(r"[A-Z][A-Z0-9_]*\Z")
MAX_DEPTH = 4

Event = tuple[str, object]  # ("str", bytes) or ("call", address / mangled name)


class Elf:
    """The parts of an x86-64 ELF shared object this script reads."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
            raise ValueError("not a little-endian ELF64 file")
        self.data = data
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        headers = [
            struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
        ]
        names_at = headers[shstrndx][4]
        #: section name -> (address, file offset, size)
        self.sections: dict[str, tuple[int, int, int]] = {}
        symtab = None
        for name, kind, _flags, addr, off, size, link, _info, _align, entsize in headers:
            key = data[names_at + name : data.index(b"\0", names_at + name)].decode()
            self.sections[key] = (addr, off, size)
            if kind == 2:  # SHT_SYMTAB
                symtab = (off, size, entsize, headers[link][4])
        if symtab is None:
            raise ValueError("the .so has no symbol table (stripped): its functions are unknown")
        #: function start -> (mangled name, size)
        self.functions: dict[int, tuple[str, int]] = {}
        #: (start, end) of each C++ type-name string (``_ZTS*``), sorted
        self.type_names: list[tuple[int, int]] = []
        self._read_symbols(*symtab)
        self._events: dict[int, list[Event]] = {}

    def _read_symbols(self, off: int, size: int, entsize: int, strings: int) -> None:
        for pos in range(off, off + size, entsize):
            name, info, _other, _shndx, value, length = struct.unpack_from(
                "<IBBHQQ", self.data, pos
            )
            if not value or not length:
                continue
            symbol = self.data[strings + name : self.data.index(b"\0", strings + name)].decode()
            if info & 0xF == 2:  # STT_FUNC
                self.functions.setdefault(value, (symbol, length))
            elif symbol.startswith("_ZTS"):
                self.type_names.append((value, value + length))
        self.type_names.sort()

    def offset(self, section: str, addr: int) -> int | None:
        start, off, size = self.sections[section]
        return off + addr - start if start <= addr < start + size else None

    def string_at(self, addr: int) -> bytes | None:
        """The printable NUL-terminated string at ``addr`` in .rodata, else None."""
        pos = self.offset(".rodata", addr)
        if pos is None:
            return None
        end = self.data.find(b"\0", pos, pos + 8192)
        text = self.data[pos:end] if end > pos else b""
        if not text or any((c < 32 and c not in (9, 10)) or c > 126 for c in text):
            return None
        return text

    def is_type_name(self, addr: int) -> bool:
        at = bisect.bisect_right(self.type_names, (addr, float("inf"))) - 1
        return at >= 0 and self.type_names[at][0] <= addr < self.type_names[at][1]

    def events(self, start: int) -> list[Event]:
        """("str", bytes) per string loaded and ("call", address) per call, in code order."""
        if start not in self._events:
            self._events[start] = list(self._scan(start))
        return self._events[start]

    def _scan(self, start: int) -> Iterator[Event]:
        _name, length = self.functions[start]
        pos = self.offset(".text", start)
        if pos is None:
            return
        code = self.data[pos : pos + length]
        for match in INSN.finditer(code):
            at = match.start()
            if code[at] == 0xE8:
                if at + 5 <= len(code):
                    target = start + at + 5 + struct.unpack_from("<i", code, at + 1)[0]
                    if target in self.functions:
                        yield "call", target
            elif at + 7 <= len(code):
                text = self.string_at(start + at + 7 + struct.unpack_from("<i", code, at + 3)[0])
                if text is not None:
                    yield "str", text

    def expanded(self, start: int, depth: int = 0) -> Iterator[Event]:
        """events(), calls to pybind11 class_/enum_ members replaced by their own events
        (calls then carry the callee's mangled name)."""
        for kind, value in self.events(start):
            if kind == "call":
                callee = self.functions[value][0]
                if depth < MAX_DEPTH and EXPAND.match(callee):
                    yield from self.expanded(value, depth + 1)
                else:
                    yield "call", callee
            else:
                yield kind, value


def bare_names(elf: Elf) -> set[str]:
    """Identifiers loaded by code, and whole identifier strings in .rodata."""
    names: set[str] = set()
    for start in elf.functions:
        for kind, value in elf.events(start):
            if kind == "str" and IDENT.match(value):
                names.add(value.decode())
    addr, off, size = elf.sections[".rodata"]
    for match in re.finditer(rb"(?<=\0)[A-Za-z_][A-Za-z0-9_]*(?=\0)", elf.data[off : off + size]):
        if not elf.is_type_name(addr + match.start()):
            names.add(match.group().decode())
    return names


def qualified_names(elf: Elf) -> set[str]:
    """Class names and ``Class.member`` from the bind functions (see the module doc)."""
    binds = {addr for addr, (name, _size) in elf.functions.items() if BIND.match(name)}
    if not binds:
        raise ValueError("no tensorrt::bind* functions in the symbol table")
    # and the module's init, which calls them (and may define classes itself)
    inits = {
        addr
        for addr in elf.functions
        if addr not in binds and any(k == "call" and v in binds for k, v in elf.events(addr))
    }
    names: set[str] = set()

    def walk(start: int) -> None:
        scope: str | None = None
        parent: str | None = None  # the class open before ``scope``
        members: list[str] = []  # identifiers loaded since ``scope`` opened
        for kind, value in elf.expanded(start):
            if kind == "call" and value == INITIALIZE:
                if not members:
                    raise ValueError("a class whose name is not loaded before it is created")
                new: str | None = members.pop()
                if scope is not None:
                    names.update(f"{scope}.{m}" for m in members)
                if new.startswith("_"):  # pybind11's own types (module init), not TensorRT's
                    new = None
                scope, parent, members = new, scope, []
            elif kind == "call" and value == EXPORT_VALUES and scope is not None:
                names.update(f"{scope}.{m}" for m in members)
                if parent is not None:
                    names.add(f"{parent}.{scope}")
                    names.update(f"{parent}.{m}" for m in members if ENUM_MEMBER.match(m))
                scope, parent, members = parent, None, []
            elif kind == "str" and IDENT.match(value):
                members.append(value.decode())
        if scope is not None:
            names.update(f"{scope}.{m}" for m in members)

    for start in sorted(binds | inits):
        walk(start)
    return names


def package_names(source: str, known: set[str]) -> set[str]:
    """What the package ``__init__.py`` adds to the module and its classes."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        names.add(target.id)
                    elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                        names.add(f"{target.value.id}.{target.attr}")
            elif isinstance(node, ast.For):
                copied = _members_copied(node, known)
                if copied is None:
                    visit(node.body)
                else:
                    names.update(copied)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)

    visit(ast.parse(source).body)
    return names


def _members_copied(loop: ast.For, known: set[str]) -> set[str] | None:
    """``for k, v in E.__members__.items(): setattr(C, k, v)`` -> {"C.M" for E's members}."""
    items = loop.iter
    if not (
        isinstance(items, ast.Call)
        and isinstance(items.func, ast.Attribute)
        and items.func.attr == "items"
        and isinstance(items.func.value, ast.Attribute)
        and items.func.value.attr == "__members__"
    ):
        return None
    enum = ast.unparse(items.func.value.value).split(".")[-1]
    targets = {
        call.args[0].id
        for stmt in loop.body
        if isinstance(stmt, ast.Expr)
        and isinstance(call := stmt.value, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "setattr"
        and call.args
        and isinstance(call.args[0], ast.Name)
    }
    members = [n.split(".", 1)[1] for n in known if n.startswith(f"{enum}.")]
    return {f"{t}.{m}" for t in targets for m in members if ENUM_MEMBER.match(m)}


def read_wheel(wheel: Path) -> tuple[str, bytes, str]:
    """(version, the pybind11 module's bytes, the package __init__.py) of a bindings wheel."""
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
        modules = [n for n in files if re.fullmatch(r"tensorrt[a-z_]*/tensorrt[^/]*\.so", n)]
        if len(modules) != 1:
            raise SystemExit(f"{wheel.name}: expected one tensorrt*.so, found {modules}")
        init = f"{modules[0].split('/')[0]}/__init__.py"
        source = archive.read(init).decode() if init in files else ""
        return version, archive.read(modules[0]), source


def extract(so: bytes, init: str) -> list[str]:
    elf = Elf(so)
    names = bare_names(elf) | qualified_names(elf)
    names |= package_names(init, names)
    return sorted(n for n in names if "pybind11" not in n)  # pybind11's own plumbing


def write_list(wheel: Path, command: str, folder: Path = HERE) -> Path:
    version, so, init = read_wheel(wheel)
    names = extract(so, init)
    out = folder / f"tensorrt-{version.split('.')[0]}.txt"
    header = (
        f"# {wheel.name}: TensorRT {version}, names from its tensorrt.so and __init__.py "
        f"(see {Path(SCRIPT).name}); regenerate with: {command}\n"
    )
    out.write_text(header + "".join(f"{n}\n" for n in names))
    print(f"{out.name}: {len(names)} names from {wheel.name}")
    return out


def pip(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], check=True, capture_output=True, text=True
    ).stdout


def newest(package: str, major: int) -> str:
    """The newest ``major``.x release of ``package`` (pip lists newest first)."""
    listed = re.search(r"Available versions: (.*)", pip("index", "versions", package))
    versions = [v.strip() for v in listed.group(1).split(",")] if listed else []
    ours = [v for v in versions if v.split(".")[0] == str(major)]
    if not ours:
        raise SystemExit(f"{package} has no {major}.x release (found {versions})")
    return ours[0]


def download(package: str, version: str, dest: Path) -> Path:
    """The manylinux x86_64 wheel of ``package==version`` for CPython 3.11 (or another)."""
    for python in PYTHONS:
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        try:
            pip("download", "--no-deps", "--only-binary", ":all:", "--python-version", python,
                *platforms, "-d", str(dest), f"{package}=={version}")  # fmt: skip
        except subprocess.CalledProcessError:
            continue
        return next(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    raise SystemExit(f"no CPython manylinux x86_64 wheel of {package}=={version}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", nargs="*", type=Path, help="bindings wheels to read")
    parser.add_argument(
        "--version",
        action="append",
        default=[],
        help="download this TensorRT version (10.x: tensorrt-cu12-bindings, 11.x: -cu13-)",
    )
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the lists")
    args = parser.parse_args(argv)
    for wheel in args.wheels:
        write_list(wheel, f"python {SCRIPT} {wheel.name}", args.out)
    if args.wheels and not args.version:
        return
    with tempfile.TemporaryDirectory() as tmp:
        wanted = [(int(v.split(".")[0]), v) for v in args.version] or [
            (major, newest(package, major)) for major, package in PACKAGES.items()
        ]
        for major, version in wanted:
            wheel = download(PACKAGES[major], version, Path(tmp))
            write_list(wheel, f"python {SCRIPT} --version {version}", args.out)


if __name__ == "__main__":
    main()
