import subprocess
import sys
from pathlib import Path

import pyspark

from streamrec.features.spark_python import bytecode_first

_OWN_LIB = Path(pyspark.__file__).parent / "python" / "lib"
_LAUNCHER = Path(sys.executable).with_name("streamrec-spark-python")


def test_only_the_installed_pysparks_own_zips_move_behind_it():
    own = [str(_OWN_LIB / "pyspark.zip"), str(next(_OWN_LIB.glob("py4j-*.zip")))]
    elsewhere = "/opt/spark/python/lib/pyspark.zip"
    path = ["/work", *own, elsewhere, *sys.path[1:]]
    reordered = bytecode_first(path)
    assert sorted(reordered) == sorted(path)
    assert reordered[:2] == ["/work", elsewhere]  # a cluster's own pyspark keeps its place
    assert reordered[-2:] == own


def test_a_path_without_an_installed_pyspark_is_left_alone():
    path = ["/work", "/opt/spark/python/lib/pyspark.zip", "/nowhere"]
    assert bytecode_first(path) == path


def test_launcher_runs_a_module_as_python_would_with_pyspark_as_bytecode(tmp_path):
    """What Spark starts for each Python process: ``-m MODULE ARGS`` with its zips first."""
    (tmp_path / "probe.py").write_text(
        "import sys, pyspark; print(pyspark.__file__); print(sys.argv[1:]); print(sys.path[0])"
    )
    zips = f"{_OWN_LIB / 'pyspark.zip'}:{next(_OWN_LIB.glob('py4j-*.zip'))}"
    run = subprocess.run(
        [str(_LAUNCHER), "-m", "probe", "a", "b"],
        cwd=tmp_path,
        env={"PYTHONPATH": zips},
        capture_output=True,
        text=True,
        check=True,
    )
    origin, argv, first = run.stdout.splitlines()
    assert ".zip" not in origin and origin.endswith("pyspark/__init__.py")
    assert argv == "['a', 'b']" and first == str(tmp_path)


def test_launcher_passes_any_other_command_line_to_python():
    run = subprocess.run(
        [str(_LAUNCHER), "-c", "import sys; print(sys.argv)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == "['-c']"


def test_spark_runs_the_launcher_beside_the_interpreter_else_the_interpreter(tmp_path, monkeypatch):
    from streamrec.features import spark_session

    assert spark_session._python_for_spark() == str(_LAUNCHER)
    bare = tmp_path / "python3"  # an interpreter without streamrec's console scripts
    monkeypatch.setattr(sys, "executable", str(bare))
    assert spark_session._python_for_spark() == str(bare)


def test_the_session_gets_executor_sizing_only_when_set_and_the_passthrough_last():
    from streamrec.features.spark_session import _cluster_settings
    from streamrec.infra.core.config import load_config

    default = _cluster_settings(load_config(environ={}))
    assert "spark.executor.memory" not in default and "spark.executor.cores" not in default
    sized = _cluster_settings(load_config(environ={
        "STREAMREC_SPARK_EXECUTOR_MEMORY": "4g", "STREAMREC_SPARK_EXECUTOR_CORES": "2",
        "STREAMREC_SPARK_CONF": "spark.executor.instances=2",
    }))  # fmt: skip
    assert sized["spark.executor.memory"] == "4g" and sized["spark.executor.cores"] == "2"
    assert list(sized)[-1] == "spark.executor.instances"
