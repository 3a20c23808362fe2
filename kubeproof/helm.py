"""Helm charts in --manifests mode: a chart folder is rendered with `helm template` (helm built from
the Go module proxy by tools/helm, like kustomize) and every rendered document keeps the chart file and
line it was written at, so findings point back into the repository.

Rendering is offline and self-contained: helm's cache, configuration and data folders point into a
temporary folder, dependencies come only from the chart's own charts/ folder (folders or .tgz), and a
dependency missing there is an error, never a download.

How a document finds its line. Helm reorders what it renders (CRDs first, then by kind), drops
documents that render empty and repeats the body of a range loop, so counting documents in helm's
output cannot say which one came from where. kubeproof therefore renders a copy of the chart in which
every document start of every template carries a marker: a template action that prints a YAML
comment naming the file and the line where that document starts in the user's chart. Helm keeps
comments, so each rendered document says where it was written, whatever order it comes out in and
however often a loop repeats it. The markers are removed from the text handed back.
See `render` for the rule when a document carries no marker."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubeproof.controlplane.build import REPO_ROOT, BuildError, _required_version, cache_root, pinned

MODULE = REPO_ROOT / "tools" / "helm"
HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"
RENDER_TIMEOUT = 300
# Helm's release names are DNS-1123 labels of at most 53 characters.
RELEASE_NAME_LIMIT = 53

_MARKER = "# kubeproof-template: "
_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$")
_SOURCE = re.compile(r"^# Source: (.+?)\s*$")


class HelmError(Exception):
    """The chart cannot be rendered: exit status 2, naming the chart folder or file."""


@dataclass(frozen=True)
class Rendered:
    """One document of a rendered chart."""
    text: str       # the document's YAML, without helm's `# Source:` comment
    source: str     # the file it was written in, relative to the chart folder (templates/x.yaml,
                    # crds/x.yaml, charts/sub/templates/x.yaml, charts/sub-1.0.0.tgz/sub/templates/x.yaml)
    line: int       # 1-based line in that file where the document starts
    namespace: str  # the release namespace: where a namespaced object without metadata.namespace goes

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def is_chart(folder: str | Path) -> bool:
    return (Path(folder) / "Chart.yaml").is_file()


def helm_binary() -> Path:
    """helm built from the Go module proxy at the version tools/helm/go.mod pins, once per machine.

    It is built under a temporary name and renamed into place, under a lock, so two runs starting
    together neither build it twice nor ever see half a binary."""
    try:
        version = _required_version(MODULE / "go.mod", "helm.sh/helm/v3")
    except (BuildError, OSError) as error:
        raise HelmError(f"{MODULE / 'go.mod'}: cannot read the helm pin: {error}") from None
    target = cache_root() / "helm" / f"helm-{version}"
    if _executable(target):
        return target
    go = shutil.which("go")
    if not go:
        raise HelmError("a Helm chart needs Go on PATH to build helm from tools/helm; it is not there")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _executable(target):  # another run built it while this one waited
            return target
        staging = target.parent / f"{target.name}.building-{os.getpid()}"
        env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
        try:
            stamp = f"-X helm.sh/helm/v3/internal/version.version={version}"  # what `helm version` says
            done = subprocess.run([go, "build", "-ldflags", stamp, "-o", str(staging), HELM_PACKAGE], cwd=MODULE,
                                  env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise HelmError(f"building helm {version} from {MODULE} failed: {done.stderr.strip()[-800:]}")
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
    return target


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def chart_name(chart: str | Path) -> str:
    return str(_chart_yaml(Path(chart)).get("name"))


def release_name(chart: str | Path) -> str:
    """The release name kubeproof gives a chart when none is asked for: its Chart.yaml name, made a
    valid release name (lower case, letters, digits and dashes, at most 53 characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", chart_name(chart).lower())[:RELEASE_NAME_LIMIT].strip("-")
    return name or "release"


def render(chart: str | Path, values: list[str | Path] | tuple = (), namespace: str | None = None,
           release: str | None = None) -> list[Rendered]:
    """Render `chart` as `helm template` would install it: the chart's values.yaml, then each file of
    `values` in order (later files win), hooks included, test hooks left out (`helm test` runs them on
    demand; an install does not create them), CRDs from crds/ folders included.

    `release` defaults to `release_name(chart)`, `namespace` to the release name: kubeproof installs
    each chart into a fresh cluster, so a namespace of its own is what an operator would choose.
    Every Rendered names that namespace; the caller creates it before applying. The chart is rendered
    for the embedded cluster's Kubernetes version (.Capabilities.KubeVersion), offline.

    Where a document was written: the marker its template carries (see the module docstring). A
    document without one of its own file (text a template includes from another file, or a file
    helm emits verbatim such as crds/) is placed by position: the n-th document helm emits from a
    file is put at the n-th document start found in that file, and at the last start found when the
    file yields more documents than it has starts."""
    chart = Path(chart)
    if not is_chart(chart):
        raise HelmError(f"{chart}: not a Helm chart (no Chart.yaml)")
    for path in values:
        _check_values(Path(path))
    release = release or release_name(chart)
    namespace = namespace or release
    binary = helm_binary()
    with tempfile.TemporaryDirectory(prefix="kubeproof-helm-") as scratch:
        scratch = Path(scratch)
        copy = scratch / "chart"
        try:
            shutil.copytree(chart, copy, ignore=shutil.ignore_patterns(".git"))
        except (OSError, shutil.Error) as error:
            raise HelmError(f"{chart}: cannot be read: {error}") from None
        layout = _Layout()
        layout.prepare(copy, "", [chart_name(copy)])
        command = [str(binary), "template", release, str(copy), "--namespace", namespace, "--include-crds",
                   "--skip-tests", "--kube-version", _kubernetes_version()]
        for path in values:
            command += ["--values", str(Path(path).resolve())]
        home = scratch / "home"
        env = {key: value for key, value in os.environ.items() if not key.startswith("HELM_")}
        env.update(HELM_CACHE_HOME=str(home / "cache"), HELM_CONFIG_HOME=str(home / "config"),
                   HELM_DATA_HOME=str(home / "data"), KUBECONFIG=str(home / "kubeconfig"),
                   HOME=str(home))
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=scratch,
                                  timeout=RENDER_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise HelmError(f"{chart}: helm template did not finish in {RENDER_TIMEOUT} s") from None
        if done.returncode != 0:
            message = withhold_values(done.stderr.replace(str(copy), str(chart)),
                                      [Path(v) for v in values] + sorted(chart.rglob("values.yaml")))
            raise HelmError(f"{chart}: helm could not render the chart: {message.strip()[-800:]}")
        return layout.documents(done.stdout, namespace)


def _kubernetes_version() -> str:
    """The embedded cluster's version, which the chart is rendered for (.Capabilities.KubeVersion):
    helm built from source would otherwise claim Kubernetes 1.20, and charts that choose an API
    version by it would render ones the cluster no longer serves."""
    try:
        return pinned().kubernetes_version
    except (BuildError, OSError) as error:
        raise HelmError(f"cannot tell which Kubernetes version to render charts for: {error}") from None


WITHHELD = "<a value, withheld>"
_VALUE_LINE = re.compile(r"^\s*(?:-\s+)?(?:[^#:\s][^:]*:\s+)?(?P<value>[^#\s].*?)\s*(?:\s#.*)?$")


def withhold_values(message: str, files: list[Path]) -> str:
    """helm's message with every value of these values files taken out. A chart's `fail` or
    `required` may quote a value, and a values file may hold a password. Values are gathered both as
    PyYAML reads each file and as text after `key:` or `-` on each line, so a value whose reading
    differs between YAML readers is still found. Four characters or more: shorter ones (ports,
    `true`) are no secret, and would take out the line numbers helm names."""
    found: set[str] = set()
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = _VALUE_LINE.match(line)
            if match:
                found.add(match.group("value").strip("'\""))
        try:
            _scalars(yaml.safe_load(text), found)
        except yaml.YAMLError:
            pass
    for value in sorted((v for v in found if len(v) >= 4), key=len, reverse=True):
        message = message.replace(value, WITHHELD)
    return message


def _scalars(data, into: set[str]) -> None:
    if isinstance(data, dict):
        for value in data.values():
            _scalars(value, into)
    elif isinstance(data, list):
        for value in data:
            _scalars(value, into)
    elif isinstance(data, str | int | float) and not isinstance(data, bool):
        into.add(str(data))
        into.update(line for line in str(data).splitlines() if line.strip())


def _check_values(path: Path) -> None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise HelmError(f"{path}: values file does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HelmError(f"{path}: values file cannot be read: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise HelmError(f"{where}: values file is not valid YAML: {getattr(error, 'problem', None) or error}") \
            from None
    if data is not None and not isinstance(data, dict):
        raise HelmError(f"{path}: a values file must be a mapping of names to values, not {type(data).__name__}")


def _chart_yaml(chart: Path) -> dict:
    path = chart / "Chart.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise HelmError(f"{path}: cannot be read as YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        raise HelmError(f"{path}: a chart needs a `name`")
    return data


def _document_starts(text: str) -> list[tuple[int, int]]:
    """Where each document of a template starts, as (1-based line, column before its text).

    A document starts at the start of the file and after each `---` line; its start is the first
    line holding YAML text outside template actions (`{{ ... }}`, which may span lines) that is not
    a YAML comment. A document holding no such text (only `{{ include ... }}`, say) starts at its
    first line that is neither blank nor a comment; one holding neither has no start."""
    starts: list[tuple[int, int]] = []
    inside_action, looking, fallback = False, True, None
    for number, line in enumerate(text.splitlines(), 1):
        if not inside_action and _SEPARATOR.match(line):
            if looking and fallback:
                starts.append(fallback)
            looking, fallback = True, None
            continue
        text_column, index = None, 0
        while index < len(line):
            if inside_action:
                end = line.find("}}", index)
                if end < 0:
                    break
                inside_action, index = False, end + 2
                continue
            begin = line.find("{{", index)
            segment = line[index:begin if begin >= 0 else len(line)]
            if text_column is None and segment.strip():
                text_column = index + len(segment) - len(segment.lstrip())
            if begin < 0:
                break
            inside_action, index = True, begin + 2
        if not looking:
            continue
        if text_column is not None and not line[text_column:].startswith("#"):
            # Before the text itself where actions lead the line (`{{- if .x }}kind: A`), else at column 0.
            starts.append((number, text_column if line[:text_column].strip() else 0))
            looking, fallback = False, None
        elif fallback is None and line.strip() and not line.lstrip().startswith("#"):
            fallback = (number, 0)
    if looking and fallback:
        starts.append(fallback)
    return starts


def _verbatim_starts(text: str) -> list[int]:
    """The line of each non-empty document of a file helm copies as it is (crds/)."""
    loader = yaml.SafeLoader(text)
    starts = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                starts.append(node.start_mark.line + 1)
    except yaml.YAMLError:
        pass  # helm or the apply step names what is wrong with it; a position is all needed here
    finally:
        loader.dispose()
    return starts


class _Layout:
    """The copy of a chart being rendered: which Source prefix of helm's is which folder of the user's
    chart, and where each file's documents start."""

    def __init__(self):
        self.prefixes: dict[str, str] = {}      # helm's "<chart>/charts/<sub>" -> "charts/sub/"
        self.files: dict[str, Path] = {}        # chart-relative path -> its (unmarked) copy or text
        self.starts: dict[str, list[int]] = {}  # chart-relative path -> document starts

    def prepare(self, folder: Path, prefix: str, names: list[str]) -> None:
        meta = _chart_yaml(folder)
        for name in names:
            self.prefixes[name] = prefix
        templates = folder / "templates"
        for path in sorted(templates.rglob("*")) if templates.is_dir() else []:
            if path.is_file() and not path.name.startswith("_") and path.name != "NOTES.txt":
                self._mark(path, prefix + str(path.relative_to(folder)))
        crds = folder / "crds"
        for path in sorted(crds.rglob("*")) if crds.is_dir() else []:
            if path.is_file():
                self.files[prefix + str(path.relative_to(folder))] = path
        # A dependency shows in helm's Source paths under its alias where it has one (Chart.yaml lists
        # the same chart twice under two aliases for two instances).
        aliases: dict[str, list[str]] = {}
        for dependency in meta.get("dependencies") or []:
            if isinstance(dependency, dict) and isinstance(dependency.get("name"), str):
                aliases.setdefault(dependency["name"], []).append(dependency.get("alias") or dependency["name"])
        subcharts = folder / "charts"
        for entry in sorted(subcharts.iterdir()) if subcharts.is_dir() else []:
            if entry.name.startswith(("_", ".")):
                continue  # helm skips these too
            if entry.is_file() and entry.name.endswith(".tgz"):
                inner, top = self._unpack(entry, folder)
                sub_prefix = f"{prefix}charts/{entry.name}/{top}/"
            elif entry.is_dir() and is_chart(entry):
                inner, sub_prefix = entry, f"{prefix}charts/{entry.name}/"
            else:
                continue
            sub_name = chart_name(inner)
            self.prepare(inner, sub_prefix,
                         [f"{name}/charts/{alias}" for name in names for alias in aliases.get(sub_name, [sub_name])])

    def _unpack(self, archive: Path, chart: Path) -> tuple[Path, str]:
        """A packaged dependency is unpacked next to where it was (so its templates can carry markers)
        and the archive removed from the copy; helm loads the folder the same way."""
        staging = archive.with_name(f".{archive.name}-unpacking")
        try:
            with tarfile.open(archive) as packed:
                packed.extractall(staging, filter="data")
        except (OSError, tarfile.TarError) as error:
            raise HelmError(f"{chart.name}/charts/{archive.name}: not a readable chart archive: {error}") from None
        tops = [p for p in staging.iterdir() if p.is_dir() and is_chart(p)]
        if len(tops) != 1:
            raise HelmError(f"{chart.name}/charts/{archive.name}: expected one chart folder inside the archive")
        # Helm wants a dependency's Chart.yaml right under charts/<folder>/; the name is free.
        unpacked = tops[0].rename(archive.with_name(archive.name + "-unpacked"))
        shutil.rmtree(staging)
        archive.unlink()
        return unpacked, tops[0].name

    def _mark(self, path: Path, relative: str) -> None:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return  # helm reports a template it cannot read
        starts = _document_starts(text)
        self.starts[relative] = [number for number, _ in starts]
        lines = text.splitlines(keepends=True)
        # The marker goes on the start line itself, so it is printed exactly when that document's text
        # is (inside a condition or a loop alike), and on no new line, so helm's own error positions stay
        # right. It is printed by an action, which trim markers such as `{{-` cannot swallow.
        for number, column in starts:
            line = lines[number - 1]
            action = "{{ " + json.dumps(_marker(relative, number) + "\n") + " }}"
            lines[number - 1] = line[:column] + action + line[column:]
        path.write_text("".join(lines))

    def original(self, source: str) -> str:
        """helm's Source path -> the path relative to the chart folder the user gave."""
        best = max((name for name in self.prefixes if source.startswith(name + "/")), key=len, default=None)
        return source if best is None else self.prefixes[best] + source[len(best) + 1:]

    def documents(self, output: str, namespace: str) -> list[Rendered]:
        found: list[Rendered] = []
        counts: dict[str, int] = {}
        source = None
        for piece in re.split(r"^---[ \t]*(?:#.*)?\n", output, flags=re.MULTILINE):
            kept, markers = [], []
            for line in piece.splitlines():
                named = _SOURCE.match(line)
                if named and not kept:
                    source = self.original(named.group(1))
                elif line.startswith(_MARKER):
                    if not _has_content(kept):
                        markers.append(line[len(_MARKER):])
                else:
                    kept.append(line)
            if source is None or not _has_content(kept):
                continue  # nothing but comments: not an object
            line = None
            if markers:  # the last one printed before the text is this document's own
                path, _, number = markers[-1].rpartition(":")
                if path == source and number.isdigit():
                    line = int(number)
            nth = counts.get(source, 0)
            counts[source] = nth + 1
            if line is None:
                line = self._position(source, nth)
            found.append(Rendered("\n".join(kept).strip("\n") + "\n", source, line, namespace))
        return found

    def _position(self, source: str, nth: int) -> int:
        if source not in self.starts:
            copy = self.files.get(source)
            try:
                self.starts[source] = _verbatim_starts(copy.read_text()) if copy else []
            except (OSError, UnicodeDecodeError):
                self.starts[source] = []
        starts = self.starts[source]
        return starts[min(nth, len(starts) - 1)] if starts else 1


def _has_content(lines: list[str]) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in lines)


def _marker(relative: str, line: int) -> str:
    return f"{_MARKER}{relative}:{line}"
