"""Hostile study files and dataset paths (issue 25, item 8): each is one line and a quick
refusal, never a hang, a traceback or a megabyte of "one line"."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from sweep.cli import main
from sweep.errors import DataError, SpecError
from sweep.study import load_study
from sweep.study.reading import MAX_MESSAGE

from conftest import tiny_study, write_study

STUDY = "name: bomb\ndataset: {name: digits}\n"


def _bomb(levels: int) -> str:
    """YAML's "billion laughs", as one list: level k is a list of ten level k-1 lists."""
    items = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    items += [f"&a{k} [{', '.join([f'*a{k - 1}'] * 10)}]" for k in range(1, levels + 1)]
    return f"[{', '.join(items)}]"


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(STUDY + f"model: {{filters: {_bomb(9)}}}\n")
    started = time.perf_counter()
    with pytest.raises(SpecError, match="bomb.yaml: the YAML expands to more than 100,000 "
                                        r"values \(aliases of aliases\)"):
        load_study(str(path))
    assert time.perf_counter() - started < 2  # before: no end, 1.5 GB


def test_a_value_quoted_in_an_error_is_cut_to_one_readable_line(tmp_path):
    path = tmp_path / "big.yaml"  # 10,000 values: under the bound, but no filters list
    path.write_text(STUDY + f"model: {{filters: {_bomb(3)}}}\n")
    with pytest.raises(SpecError) as err:
        load_study(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: model.filters: expected a ")
    assert len(message) < MAX_MESSAGE + 40 and "characters in all)" in message  # was 800 KB
    assert "\n" not in message


def test_a_huge_grid_is_counted_and_refused_before_any_point_is_built(tmp_path, capsys):
    axes = {f"model.{k}": v for k, v in (("kernel", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),)}
    axes |= {"training.learning_rate": [0.001 * (k + 1) for k in range(10)],
             "training.batch_size": list(range(1, 11)),
             "model.dropout": [k / 20 for k in range(10)],
             "training.epochs": list(range(1, 11)), "seed": list(range(10)),
             "model.dense": [[k + 1] for k in range(10)]}
    path = write_study(tmp_path, tiny_study(None, dataset={"name": "digits"},
                                            search={"params": axes}, training={}))
    started = time.perf_counter()
    assert main(["run", str(path), "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    assert time.perf_counter() - started < 5  # before: about an hour of CPU, then trial 0
    line = capsys.readouterr().err.strip()
    assert line.endswith("search: the grid has 10,000,000 points (10 x 10 x 10 x 10 x 10 x 10 x "
                         "10 values), more than the 100,000 a run takes; fewer values, or "
                         "--max-points 10000000 to run them all")
    assert not (tmp_path / "s.db").exists()
    assert load_study(str(path), max_points=10_000_000).search.params  # the flag lifts it


def test_a_study_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\ndataset: {name: digits}\n".encode("latin-1"))
    assert main(["describe", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"sweep: error: {path}: not UTF-8 text (byte 9: b'\\xe9'); save the study file as UTF-8")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_or_a_folder_given_as_the_study_file_is_said_for_what_it_is(tmp_path, capsys):
    # issue 33: "no such study file" for a FIFO that is there
    os.mkfifo(tmp_path / "study.yaml")
    (tmp_path / "folder.yaml").mkdir()
    for name, what in (("study.yaml", "is a FIFO (named pipe)"), ("folder.yaml", "is a folder")):
        assert main(["describe", str(tmp_path / name)]) == 2
        assert capsys.readouterr().err.strip() == (
            f"sweep: error: {tmp_path / name} {what}, not a study file (YAML text)")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_among_the_images_is_refused_not_read(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for name in ("cat", "dog"):
            folder = tmp_path / "images" / split / name
            folder.mkdir(parents=True)
            Image.fromarray(np.zeros((4, 4, 3), "uint8")).save(folder / "0.png")
    os.mkfifo(tmp_path / "images" / "train" / "dog" / "9.png")
    code = ("from sweep.data import load_dataset\n"
            f"load_dataset({{'name': 'folder', 'path': {str(tmp_path / 'images')!r}, "
            "'validation_split': 0.1, 'max_train': None}, 0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # before: blocked on the FIFO for ever
    assert done.stderr.strip().endswith(
        f"DataError: {tmp_path / 'images' / 'train' / 'dog' / '9.png'} is a FIFO (named pipe), "
        "not an image file; remove it")


@pytest.mark.parametrize("path,what", [("/dev/zero", "is a character device"),
                                       ("/nowhere.npz", "does not exist")])
def test_a_dataset_path_that_is_no_file_says_what_it_is(path, what):
    from sweep.data import load_dataset

    if not os.path.exists(path) and what != "does not exist":
        pytest.skip(f"{path} is not on this system")
    with pytest.raises(DataError, match=f"dataset.path: {path} {what} "
                                        r"\(expected an .npz file\)"):
        load_dataset({"name": "npz", "path": path, "validation_split": 0.1,
                      "max_train": None}, 0)
