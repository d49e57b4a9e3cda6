"""Java discovery and JVM jar resolution.

Jars come from Maven Central through Apache Ivy's standalone resolver, the one shipped inside
pyspark (``pyspark/jars/ivy-*.jar``), so a machine needs only Python and a JDK; they are cached
under ``<cache_dir>/jars`` and every later start is offline.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptolab.errors import JarResolutionError, JavaNotFoundError

log = logging.getLogger(__name__)

MIN_JAVA = 17
_COMPLETE = ".complete"


def find_java() -> str:
    """Path of a java >= 17: $JAVA_HOME/bin/java, else java on PATH."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise JavaNotFoundError(f"Java {MIN_JAVA}+ not found: install a JDK or set JAVA_HOME")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise JavaNotFoundError(
            f"Java {MIN_JAVA}+ required, found {major or 'unknown'} at {java}: "
            "install a newer JDK or point JAVA_HOME at one"
        )
    return java


@dataclass(frozen=True)
class Artifact:
    org: str
    name: str
    rev: str

    def xml(self) -> str:
        return (
            f'    <dependency org="{self.org}" name="{self.name}" rev="{self.rev}" '
            'conf="default->default"/>'
        )


@dataclass(frozen=True)
class JarBundle:
    """A named set of Maven artifacts resolved (with their dependencies) into one folder."""

    name: str
    artifacts: tuple[Artifact, ...]
    exclude_names: frozenset[str] = frozenset()

    def folder(self, jars_dir: Path) -> Path:
        return jars_dir / self.name

    def is_cached(self, jars_dir: Path) -> bool:
        return (self.folder(jars_dir) / _COMPLETE).exists()

    def jars(self, jars_dir: Path) -> list[Path]:
        folder = self.folder(jars_dir)
        return sorted(p for p in folder.glob("*.jar") if artifact_name(p) not in self.exclude_names)


def artifact_name(jar: Path) -> str:
    """``kafka-clients-3.9.2.jar`` -> ``kafka-clients``."""
    match = re.match(r"^(.*?)-\d[^-]*(?:-[A-Za-z0-9.]+)*\.jar$", jar.name)
    return match.group(1) if match else jar.stem


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def ivy_jar() -> Path:
    found = sorted(pyspark_jars_dir().glob("ivy-*.jar"))
    if not found:
        raise JarResolutionError("Apache Ivy not found in pyspark's jars: reinstall pyspark")
    return found[-1]


def _ivy_module(bundle: JarBundle) -> str:
    deps = "\n".join(a.xml() for a in bundle.artifacts)
    return (
        '<ivy-module version="2.0">\n'
        f'  <info organisation="cryptolab" module="{bundle.name}"/>\n'
        '  <configurations><conf name="default"/></configurations>\n'
        f"  <dependencies>\n{deps}\n  </dependencies>\n</ivy-module>\n"
    )


def resolve(bundle: JarBundle, jars_dir: Path) -> list[Path]:
    """Resolve a bundle into ``jars_dir/<name>`` (cached), returning its jar paths."""
    if bundle.is_cached(jars_dir):
        return bundle.jars(jars_dir)
    java = find_java()
    folder = bundle.folder(jars_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ivy_file = folder / "ivy.xml"
    ivy_file.write_text(_ivy_module(bundle))
    log_file = folder / "resolve.log"
    coords = ", ".join(f"{a.org}:{a.name}:{a.rev}" for a in bundle.artifacts)
    log.info("resolving jars bundle=%s artifacts=%s", bundle.name, coords)
    cmd = [
        java,
        "-jar",
        str(ivy_jar()),
        "-ivy",
        str(ivy_file),
        "-confs",
        "default",
        "-cache",
        str(jars_dir / "ivy-cache"),
        "-retrieve",
        str(folder / "[artifact]-[revision](-[classifier]).[ext]"),
    ]
    with open(log_file, "w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not bundle.jars(jars_dir):
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
        raise JarResolutionError(
            f"could not resolve {coords} from Maven Central (log: {log_file}). Check the network "
            f"or proxy (Ivy honours -Dhttps.proxyHost via JAVA_TOOL_OPTIONS).\n{tail}"
        )
    (folder / _COMPLETE).write_text(coords + "\n")
    return bundle.jars(jars_dir)
