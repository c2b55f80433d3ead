"""scripts/commit_rows.py: finished rows of a GPU session's archive into results/ablation, nothing else."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

from helpers import script_module

commit = script_module("commit_rows")


def archive(tmp_path, rows: dict[str, dict], files: bool = True):
    """A recipe.tgz like gpu_recipe.sh collect packs: ./ablation/ROW.json and the row's run folder."""
    path = tmp_path / "recipe.tgz"
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for name, result in rows.items():
            add(f"ablation/{name}.json", json.dumps(result).encode())
            for src in commit.ROW_FILES.values() if files else ():
                add(f"ablation/{name}/{src}", f"{name} {src}\n".encode())
    return path


FINISHED = {"evaluations": {"test": {"valid": 71, "mean_score": 55.05}}}


def test_finished_rows_are_copied_as_committed(tmp_path):
    tgz = archive(tmp_path, {"a": FINISHED, "b": {"warm_start": {}}})  # b stopped before its evaluation
    dest = tmp_path / "results"
    lines = commit.commit_rows(tgz, dest)
    assert lines == ["a: copied (test: 71 valid, mean score 55.05)"]
    assert json.loads((dest / "a.json").read_text()) == FINISHED
    assert gzip.decompress((dest / "a" / "grpo_samples.jsonl.gz").read_bytes()) == b"a grpo/samples.jsonl\n"
    assert sorted(p.name for p in (dest / "a").iterdir()) == sorted(commit.ROW_FILES)
    assert not (dest / "b").exists() and not (dest / "b.json").exists()
    assert "not finished" in commit.commit_rows(tgz, dest, ["b"])[0]


def test_a_warm_start_only_row_is_copied_with_its_warm_start_files(tmp_path):
    evals = {"test": {"valid": 44, "mean_score": 38.5}}
    done = {"row": {"grpo": False}, "warm_start": {"evaluations": evals}, "seconds": 150.0}
    cut = {"row": {"grpo": False}, "warm_start": {"evaluations": evals}}  # stopped before it wrote its end
    tgz = archive(tmp_path, {"ws": done, "ws_cut": cut})
    dest = tmp_path / "results"
    assert commit.commit_rows(tgz, dest) == ["ws: copied (warm start only; test: 44 valid, mean score 38.50)"]
    assert sorted(p.name for p in (dest / "ws").iterdir()) == sorted(commit.WARM_START_FILES)
    assert len(commit.WARM_START_FILES) == 2 and not (dest / "ws_cut.json").exists()


def test_a_committed_row_is_replaced_only_when_forced(tmp_path):
    tgz = archive(tmp_path, {"a": FINISHED})
    dest = tmp_path / "results"
    (dest / "a").mkdir(parents=True)
    (dest / "a.json").write_text("mine")
    assert "already in" in commit.commit_rows(tgz, dest)[0] and (dest / "a.json").read_text() == "mine"
    assert "copied" in commit.commit_rows(tgz, dest, force=True)[0]


def test_a_row_missing_files_is_skipped_and_bad_archives_say_one_line(tmp_path, capsys):
    tgz = archive(tmp_path, {"a": FINISHED}, files=False)
    assert "the archive lacks" in commit.commit_rows(tgz, tmp_path / "results")[0]
    assert not (tmp_path / "results").exists()
    junk = tmp_path / "junk.tgz"
    junk.write_text("not an archive")
    assert commit.main([str(junk), "--dest", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_files_already_in_dest_and_paths_outside_it_are_never_written(tmp_path):
    """A folder of the row's name in --dest (someone's files) is left alone unless forced; a row named ".." (a
    malformed archive) is no row, so nothing lands beside --dest."""
    dest = tmp_path / "sub" / "results"
    (dest / "a").mkdir(parents=True)
    (dest / "a" / "completions_sft_test.jsonl").write_text("MY OWN NOTES")
    assert "already in" in commit.commit_rows(archive(tmp_path, {"a": FINISHED}), dest)[0]
    assert (dest / "a" / "completions_sft_test.jsonl").read_text() == "MY OWN NOTES"
    tgz = archive(tmp_path, {"..": FINISHED, ".hidden": FINISHED})
    assert commit.commit_rows(tgz, dest) == []
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["results"]


def test_results_of_the_wrong_shape_are_not_finished_rows_and_write_nothing(tmp_path):
    shapes = {
        "list": {"evaluations": [1]},
        "number": {"evaluations": {"test": 5}},
        "no_score": {"evaluations": {"test": {"valid": 3, "mean_score": None}}},
        "nan": {"evaluations": {"test": {"valid": 3, "mean_score": float("nan")}}},
        "row_text": {"row": "x", "warm_start": {"evaluations": {"test": {"valid": 1, "mean_score": 1.0}}}},
    }
    dest = tmp_path / "results"
    lines = commit.commit_rows(archive(tmp_path, shapes), dest, sorted(shapes))
    assert all("not finished" in line for line in lines) and not dest.exists()
    assert commit.commit_rows(archive(tmp_path, {}), dest, ["nope"]) == ["nope: not in recipe.tgz: skipped"]


def test_an_archive_cut_short_or_a_file_as_dest_says_one_line(tmp_path, capsys):
    whole = archive(tmp_path, {"a": FINISHED}).read_bytes()
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(whole[: len(whole) // 2])
    assert commit.main([str(cut), "--dest", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not a readable archive" in err and "\n" not in err
    (tmp_path / "file").write_text("x")
    assert commit.main([str(cut), "--dest", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
