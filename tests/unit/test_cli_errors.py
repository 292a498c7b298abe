"""User errors end in one line on stderr and a non-zero exit, never a traceback."""

import pytest

from streamrec.infra.cli.main import main


def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip()
    return code, err


def _one_line(err):
    assert err.count("\n") == 0, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        (["stack", "up", "--now"], 2, "unrecognized arguments: --now"),
        (["events", "generate", "--users", "1"], 2, "the following arguments are required"),
        (["recommend", "u1", "--k", "ten"], 2, "invalid int value: 'ten'"),
        (["--config", "/nonexistent/streamrec.toml", "config"], 1, "does not exist"),
        (
            ["events", "generate", "--users", "5", "--items", "9", "--events", "4", "--out", "x"],
            1,
            "at least 3 events per user",
        ),
        (["events", "publish", "/nonexistent.jsonl"], 1, "cannot read event file"),
        (["train", "--start-date", "2026-13-01"], 1, "is not a date"),
        (["train", "--epochs", "0"], 1, "must be at least 1"),
        (["train"], 1, "no committed training examples"),
        (["train", "--every", "6x"], 1, "is not an interval like 30m"),
        (["features", "run", "--until-idle"], 1, "Kafka is unreachable"),
        (["features", "run", "--max-events-per-batch", "-1"], 1, "must not be negative"),
        (["features", "backfill", "--start", "2026-13-01", "--end", "2026-01-02"], 1, "not a date"),
        (["features", "backfill", "--start", "2026-01-03", "--end", "2026-01-02"], 1, "is after"),
        (
            [
                "features",
                "backfill",
                "--start",
                "2026-01-01",
                "--end",
                "2026-01-02",
                "--source",
                "/x",
            ],
            1,
            "no such file",
        ),
        (
            ["events", "import", "/nonexistent.csv", "--format", "csv", "--map", "a=b"],
            1,
            "no such file",
        ),
        (
            ["items", "import", "x.csv", "--format", "xml", "--map", "item_id=a"],
            2,
            "invalid choice",
        ),
        (["evaluate"], 1, "no version serves yet"),
        (["evaluate", "--version", "4"], 1, "no model version 4"),
        (["evaluate", "--candidate", "2"], 1, "--candidate and --incumbent go together"),
        (["evaluate", "--version", "1", "--k", "ten"], 1, "expected cut-offs like 10,50"),
        (["evaluate", "--protocol", "random"], 2, "invalid choice: 'random'"),
        (["models", "show", "3"], 1, "no model version 3"),
        (["models", "promote", "3"], 1, "no model version 3"),
        (["models", "rollback"], 1, "nothing to roll back to"),
        (["serve"], 1, "Redis is unreachable"),
        (["recommend", "u1"], 1, "ranking service unreachable"),
    ],
)
def test_user_errors_are_one_line(capsys, isolated_env, argv, code, message):
    got_code, err = _run(capsys, *argv)
    assert got_code == code
    assert message in _one_line(err)


def test_verbose_shows_what_caused_the_one_line_error(capsys, isolated_env):
    """The adapters keep the client's error as the cause; --verbose prints it below the line."""
    quiet_code, quiet = _run(capsys, "serve")
    code, err = _run(capsys, "--verbose", "serve")
    assert quiet_code == code == 1
    first, *cause = err.splitlines()
    assert first == _one_line(quiet)
    assert "redis.exceptions.ConnectionError" in "\n".join(cause)


def test_malformed_event_file_is_refused_before_anything_is_sent(capsys, isolated_env, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event_id": "e1"}\n')
    code, err = _run(capsys, "events", "publish", str(path))
    assert code == 1
    assert "events.jsonl line 1: missing field(s): user_id, item_id" in _one_line(err)


def test_malformed_config_file_is_one_line(capsys, isolated_env, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[serving]\nport = \n")
    code, err = _run(capsys, "--config", str(path), "config")
    assert code == 1
    assert "is not valid TOML" in _one_line(err)


def test_config_prints_the_effective_configuration(capsys, isolated_env, monkeypatch):
    monkeypatch.setenv("STREAMREC_KAFKA_BOOTSTRAP", "broker:9092")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "# kafka: external at broker:9092" in out
    assert 'bootstrap = "broker:9092"' in out


def test_a_tf_config_that_does_not_fit_fails_before_training(capsys, isolated_env, monkeypatch):
    tf_config = '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}'
    monkeypatch.setenv("TF_CONFIG", tf_config)
    code, err = _run(capsys, "train")
    assert code == 1
    assert "TF_CONFIG task worker 3 is not in its cluster" in _one_line(err)
