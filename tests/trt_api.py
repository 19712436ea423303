"""TensorRT's Python API as NVIDIA's bindings describe it, and a recorder of what edgekit asks of it.

:class:`Stubs` indexes the type stubs generated from the TensorRT 10.13 bindings (the
``tensorrt-stubs`` wheel): classes with their bases, methods (every overload's signature),
properties, attributes and enum members, and the module's own names. :class:`Release` is what one
release offers: the names its own bindings wheel registers (read from the compiled module without
importing it), or, for a release without a wheel, an allow-list from its API reference.
:class:`Recorder` wraps a TensorRT double so that every attribute edgekit reads, sets or calls on it is
recorded under the real API's class name, with the call's arguments; :func:`violations` holds those
uses to a release and to the stubs' signatures.
"""
from __future__ import annotations

import ast
import inspect
import keyword
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_EMPTY = inspect.Parameter.empty


def _signature(fn: ast.FunctionDef, drop_self: bool) -> inspect.Signature:
    """A stub function's parameters as an inspect.Signature (annotations dropped, defaults as placeholders)."""
    a = fn.args
    params: list[inspect.Parameter] = []
    positional = [*a.posonlyargs, *a.args]
    defaults = [_EMPTY] * (len(positional) - len(a.defaults)) + [object()] * len(a.defaults)
    kinds = [inspect.Parameter.POSITIONAL_ONLY] * len(a.posonlyargs) + \
        [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(a.args)
    for arg, kind, default in zip(positional, kinds, defaults):
        params.append(inspect.Parameter(arg.arg, kind, default=default))
    if a.vararg:
        params.append(inspect.Parameter(a.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        params.append(inspect.Parameter(arg.arg, inspect.Parameter.KEYWORD_ONLY,
                                        default=_EMPTY if default is None else object()))
    if a.kwarg:
        params.append(inspect.Parameter(a.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    if drop_self and params:
        params = params[1:]
    return inspect.Signature(params)


@dataclass
class StubClass:
    name: str
    bases: list[str]
    methods: dict[str, list[inspect.Signature]] = field(default_factory=dict)
    properties: dict[str, bool] = field(default_factory=dict)     # name -> settable
    attributes: set[str] = field(default_factory=set)             # annotated: fields and enum members


def _parse(source: str) -> ast.Module:
    """A generated stub as an AST. pybind11's generator writes some signatures Python refuses: a parameter
    without a default after one with (``INetworkDefinition.add_scale_nd``), a parameter named by a keyword
    (``in``). Such a ``def`` line is repaired (placeholder defaults, ``in_``); the others stay as written."""
    lines = source.splitlines()
    for _ in range(200):
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as exc:
            line = lines[exc.lineno - 1] if exc.lineno else ""
            if not line.lstrip().startswith("def "):
                raise
            head, _, rest = line.partition("(")
            params, _, tail = rest.rpartition(")")
            parts = [f"{p.split(':')[0].strip()}_:{p.split(':', 1)[1]}" if keyword.iskeyword(p.split(":")[0].strip())
                     else p for p in params.split(", ")]
            first = next((i for i, part in enumerate(parts) if "=" in part), len(parts))
            parts = [p if i <= first or "=" in p or p.startswith("*") else f"{p} = ..." for i, p in enumerate(parts)]
            repaired = f"{head}({', '.join(parts)}){tail}"
            if repaired == line:
                raise
            lines[exc.lineno - 1] = repaired
    raise SyntaxError("too many signatures to repair")


class Stubs:
    """The names and signatures of one TensorRT release's Python API, from its ``.pyi`` files."""

    def __init__(self, bindings: str, module: str, functions: str, version: str) -> None:
        self.version = version
        self.classes: dict[str, StubClass] = {}
        for node in _parse(bindings).body:
            if isinstance(node, ast.ClassDef):
                self.classes[node.name] = self._class(node)
        self.functions: dict[str, list[inspect.Signature]] = {}
        for node in _parse(functions).body:
            if isinstance(node, ast.FunctionDef):
                self.functions.setdefault(node.name, []).append(_signature(node, drop_self=False))
        self.module_names = set(self.functions)
        for node in _parse(module).body:
            if isinstance(node, ast.ImportFrom):
                self.module_names |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.module_names.add(node.target.id)

    @staticmethod
    def _class(node: ast.ClassDef) -> StubClass:
        out = StubClass(node.name, [ast.unparse(b).split(".")[-1] for b in node.bases])
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                out.attributes.add(item.target.id)
            elif isinstance(item, ast.FunctionDef):
                decorators = [ast.unparse(d) for d in item.decorator_list]
                if "property" in decorators:
                    out.properties.setdefault(item.name, False)
                elif any(d.endswith(".setter") for d in decorators):
                    out.properties[item.name] = True
                else:
                    static = "staticmethod" in decorators
                    out.methods.setdefault(item.name, []).append(_signature(item, drop_self=not static))
        return out

    def lineage(self, name: str) -> list[StubClass]:
        """The class and its bases, nearest first."""
        out, todo = [], [name]
        while todo:
            cls = self.classes.get(todo.pop(0))
            if cls is not None and cls not in out:
                out.append(cls)
                todo += cls.bases
        return out

    def member(self, cls: str, name: str) -> tuple[str, Any] | None:
        """("method", signatures) | ("property", settable) | ("attribute", True) | None."""
        for c in self.lineage(cls):
            if name in c.methods:
                return "method", c.methods[name]
            if name in c.properties:
                return "property", c.properties[name]
            if name in c.attributes:
                return "attribute", True
        return None


class Release:
    """What one TensorRT release offers, by name.

    From a bindings wheel (``from_wheel``): every name its compiled module holds as a NUL-terminated string
    (pybind11 registers each class, method, property and enum member by its name) and every name its
    ``__init__.py`` defines (``nptype``, ``__version__``). A name counts where it ends such a string: the
    linker lets strings share a tail ("Runtime" is the end of "IRuntime"). Names alone do not say which class
    holds a member, and an enum member's name may live on in another enum: ``absent`` lists what the release
    notes say is gone although the name stays (``BuilderFlag.INT8`` in 11, while ``DataType.INT8`` remains).

    Without a wheel (``allowed``): the "Class.member" keys its API reference lists, and nothing else."""

    def __init__(self, version: str, compiled: bytes = b"", python_names: frozenset = frozenset(),
                 allowed: frozenset | None = None, absent: frozenset = frozenset()) -> None:
        self.version, self.compiled, self.python_names = version, compiled, set(python_names)
        self.allowed, self.absent = (set(allowed) if allowed is not None else None), set(absent)

    @classmethod
    def from_wheel(cls, version: str, wheel: Path, absent: frozenset = frozenset()) -> "Release":
        with zipfile.ZipFile(wheel) as z:
            so = next(n for n in z.namelist() if n.endswith(".so") and "/" in n and n.count("/") == 1)
            init = next(n for n in z.namelist() if n.endswith("/__init__.py") and n.count("/") == 1)
            compiled, tree = z.read(so), ast.parse(z.read(init).decode())
        names = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        return cls(version, compiled, frozenset(names), absent=absent)

    def has(self, name: str) -> bool:
        """A bare name (a class, a member, a module attribute), from a wheel."""
        return name in self.python_names or name.encode() + b"\0" in self.compiled

    def lacks(self, key: str) -> str | None:
        """Why "Class.member" (or a module name) is not in this release, or None."""
        if key in self.absent:
            return f"not in TensorRT {self.version} (its release notes)"
        if self.allowed is not None:
            return None if key in self.allowed else f"not in TensorRT {self.version}'s API reference"
        missing = [n for n in key.split(".") if not self.has(n)]
        return f"TensorRT {self.version}'s bindings have no {missing[0]}" if missing else None


@dataclass(frozen=True)
class Use:
    """One thing edgekit did to TensorRT: ``kind`` get | set | call, on ``owner`` (a class of the real API,
    or "tensorrt" for the module), ``name``, and a call's positional count and keyword names."""
    kind: str
    owner: str
    name: str
    args: int = 0
    kwargs: tuple[str, ...] = ()

    def __str__(self) -> str:
        call = f"({self.args} positional{', ' + ', '.join(self.kwargs) if self.kwargs else ''})" \
            if self.kind == "call" else ""
        return f"{self.kind} {self.owner}.{self.name}{call}"


def _binds(signatures: list[inspect.Signature], use: Use) -> bool:
    for sig in signatures:
        try:
            sig.bind(*range(use.args), **{k: None for k in use.kwargs})
            return True
        except TypeError:
            continue
    return False


def _in_stubs(use: Use, stubs: Stubs) -> bool:
    return use.name in stubs.module_names if use.owner == "tensorrt" else stubs.member(use.owner, use.name) is not None


def violations(uses: set[Use], stubs: Stubs | None, release: Release | None = None) -> list[str]:
    """Every use ``release`` does not have, and every use the stubs do not describe (missing name, read-only
    property set, arguments that bind to no overload). With ``release``, a name it has that the 10.13 stubs
    lack (``max_workspace_size`` on 8.x) is the release's, its signature unchecked; without ``stubs``, the
    release alone is asked."""
    found = []
    for use in sorted(uses, key=str):
        key = use.name if use.owner == "tensorrt" else f"{use.owner}.{use.name}"
        if release is not None:
            why = release.lacks(key)
            if why:
                found.append(f"{use}: {why}")
                continue
            if stubs is None or not _in_stubs(use, stubs):
                continue
        if use.owner == "tensorrt":
            if use.name not in stubs.module_names:
                found.append(f"{use}: TensorRT {stubs.version} has no {use.name}")
            elif use.kind == "call" and use.name in stubs.functions and not _binds(stubs.functions[use.name], use):
                found.append(f"{use}: matches no signature of tensorrt.{use.name}")
            elif use.kind == "call" and use.name in stubs.classes:
                init = stubs.member(use.name, "__init__")
                if init and not _binds(init[1], use):
                    found.append(f"{use}: matches no signature of {use.name}.__init__")
            continue
        member = stubs.member(use.owner, use.name)
        if member is None:
            found.append(f"{use}: TensorRT {stubs.version}'s {use.owner} has no {use.name}")
        elif use.kind == "set" and member[0] == "property" and not member[1]:
            found.append(f"{use}: {use.owner}.{use.name} is read-only")
        elif use.kind == "set" and member[0] == "method":
            found.append(f"{use}: {use.owner}.{use.name} is a method")
        elif use.kind == "call" and (member[0] != "method" or not _binds(member[1], use)):
            found.append(f"{use}: matches no signature of {use.owner}.{use.name}")
    return found


class Recorder:
    """Wraps a TensorRT double; records what the code under test reads, sets and calls, under the real
    API's class names (``names``: the double's class name -> the real class)."""

    def __init__(self, names: dict[str, str], plain: set[str]) -> None:
        self.names, self.plain = names, plain     # plain: module attributes handed over unwrapped (base classes)
        self.uses: set[Use] = set()

    def module(self, trt: Any) -> "_Proxy":
        return _Proxy(trt, "tensorrt", self)

    def wrap(self, value: Any, owner: str | None = None) -> Any:
        owner = owner or self.names.get(type(value).__name__)
        return _Proxy(value, owner, self) if owner else value


def _unwrap(value: Any) -> Any:
    return object.__getattribute__(value, "_obj") if isinstance(value, _Proxy) else value


class _Proxy:
    __slots__ = ("_obj", "_owner", "_rec")

    def __init__(self, obj: Any, owner: str, rec: Recorder) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_rec", rec)

    def __getattr__(self, name: str) -> Any:
        obj, owner, rec = (object.__getattribute__(self, k) for k in ("_obj", "_owner", "_rec"))
        value = getattr(obj, name)                      # AttributeError: a probe for what the double lacks
        if owner == "tensorrt":
            rec.uses.add(Use("get", owner, name))
            if name in rec.plain:
                return value
            return _Proxy(value, name, rec) if (callable(value) or name[:1].isupper()) else value
        if callable(value) and not isinstance(value, type):
            return _Method(value, owner, name, rec)
        rec.uses.add(Use("get", owner, name))
        return rec.wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        rec = object.__getattribute__(self, "_rec")
        rec.uses.add(Use("set", object.__getattribute__(self, "_owner"), name))
        setattr(object.__getattribute__(self, "_obj"), name, _unwrap(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        rec, owner = object.__getattribute__(self, "_rec"), object.__getattribute__(self, "_owner")
        rec.uses.add(Use("call", "tensorrt", owner, len(args), tuple(sorted(kwargs))))
        result = object.__getattribute__(self, "_obj")(*map(_unwrap, args), **{k: _unwrap(v) for k, v in kwargs.items()})
        return rec.wrap(result)


class _Method:
    def __init__(self, fn: Any, owner: str, name: str, rec: Recorder) -> None:
        self.fn, self.owner, self.name, self.rec = fn, owner, name, rec

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.rec.uses.add(Use("call", self.owner, self.name, len(args), tuple(sorted(kwargs))))
        return self.rec.wrap(self.fn(*map(_unwrap, args), **{k: _unwrap(v) for k, v in kwargs.items()}))
