"""The interpreter that Spark starts for its Python processes: ``python -m MODULE ARGS``, with
pyspark imported as bytecode.

Spark puts ``$SPARK_HOME/python/lib/pyspark.zip`` first on each Python process's path.
Python cannot cache bytecode for modules imported from a zip, so every such process compiles
pyspark's modules from source: about 0.8 s of CPU each, measured here. A streaming query
starts seven of them one after another before its first batch (data-source lookup and
creation, read planning, the source runner, the workers' daemon), and each worker forked from
the daemon compiles the modules of its task again.

When the JVM runs from the pip-installed pyspark (``SPARK_HOME`` is that package, as it is for
a local master), the zip holds the very modules installed next to it, which have bytecode.
Moving those zips to the end of the path is all it takes. Zips from any other Spark
installation stay first, so a cluster's own pyspark always wins.
"""

from __future__ import annotations

import os
import runpy
import sys
from importlib.machinery import PathFinder
from pathlib import Path


def main() -> None:
    """Runs ``-m MODULE ARGS`` as ``python`` would; any other command line goes to python."""
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "-m":
        os.execv(sys.executable, [sys.executable, *args])
    sys.path[:] = bytecode_first(sys.path)
    sys.path[0] = os.getcwd()  # what -m puts first: the launcher's own folder is not wanted
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)


def bytecode_first(path: list[str]) -> list[str]:
    """``path`` with the installed pyspark's own zips moved to the end."""
    spec = PathFinder.find_spec("pyspark", [p for p in path if not p.endswith(".zip")])
    if spec is None or spec.origin is None:
        return path
    own_zips = Path(spec.origin).resolve().parent / "python" / "lib"
    bundled = [p for p in path if p.endswith(".zip") and Path(p).resolve().parent == own_zips]
    return [p for p in path if p not in bundled] + bundled
