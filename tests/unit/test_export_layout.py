from streamrec.infra.contracts.export_layout import latest_version, versions


def test_versions_are_numeric_directories_in_numeric_order(tmp_path):
    for name in ("2", "10", "1", ".staging-abc", "notes", "0"):
        (tmp_path / name).mkdir()
    (tmp_path / "3").write_text("a file, not a version")
    assert [v.version for v in versions(tmp_path)] == [1, 2, 10]
    assert latest_version(tmp_path).version == 10


def test_no_model_dir_means_no_versions(tmp_path):
    assert versions(tmp_path / "absent") == []
    assert latest_version(tmp_path / "absent") is None
