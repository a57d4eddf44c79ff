"""Faults found by trying clbench as a hostile user or a failing machine would (issue 25): each
ends in the right result or a one-line error with a distinct exit status, never lost data, a
traceback or a silent pass."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from clbench import cli

TESTS_DIR = Path(__file__).parent
GOLDEN = TESTS_DIR / "golden" / "results"


def clbench(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# --- output paths that are not regular files: written into, never replaced ---------------------
# every command option that writes a file, with the words its text must hold
WRITERS = {
    "report --json": (["report", "--results", GOLDEN, "--json"], '"runs"'),
    "report --markdown": (["report", "--results", GOLDEN, "--markdown"], "|"),
    "report --html": (["report", "--results", GOLDEN, "--html"], "<html"),
    "report --csv": (["report", "--results", GOLDEN, "--csv"], "strategy"),
    "report --latex": (["report", "--results", GOLDEN, "--latex"], "\\begin"),
    "compare --markdown": (["compare", "--candidate", "joint", "--results", GOLDEN,
                            "--markdown"], "joint"),
    "compare --html": (["compare", "--candidate", "joint", "--results", GOLDEN, "--html"],
                       "<html"),
    "gate --markdown": (["gate", "--baseline", GOLDEN, "--current", GOLDEN, "--markdown"],
                        "gate"),
}


def _writer_ids():
    return [pytest.param(args, words, id=name) for name, (args, words) in WRITERS.items()]


@pytest.mark.parametrize("args, words", _writer_ids())
def test_output_through_a_symlink_reaches_its_target(args, words, tmp_path, capsys):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    code, out, err = clbench(capsys, *args, link)
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert words.lower() in target.read_text().lower()


@pytest.mark.parametrize("args, words", _writer_ids())
def test_output_into_a_fifo_is_streamed_not_replaced(args, words, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(Path(fifo).read_text()), daemon=True)
    reader.start()
    code, out, err = clbench(capsys, *args, fifo)
    reader.join(60)
    if reader.is_alive():  # unblock the reader if nothing ever opened the FIFO for writing
        with open(fifo, "w"):
            pass
        reader.join(5)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a file"
    assert got and words.lower() in got[0].lower()


@pytest.mark.parametrize("args, words", _writer_ids())
def test_dev_null_stays_a_device(args, words, tmp_path, capsys):
    code, out, err = clbench(capsys, *args, "/dev/null")
    assert code == 0, err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    # and a link to it in a folder of ours stays a link to a device
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    code, out, err = clbench(capsys, *args, link)
    assert code == 0, err
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)


def test_output_writer_on_every_kind_of_path(tmp_path):
    """The one writer every command uses: new path, regular file (replaced atomically, mode
    from the umask), dangling symlink (its target created), directory (refused)."""
    from clbench.files import write_output

    new = tmp_path / "sub" / "new.md"
    write_output(new, "a")
    assert new.read_text() == "a"
    old = os.umask(0o022)
    try:
        write_output(new, "b")
    finally:
        os.umask(old)
    assert new.read_text() == "b" and stat.S_IMODE(new.stat().st_mode) == 0o644
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "made.md")
    write_output(dangling, "c")
    assert dangling.is_symlink() and (tmp_path / "made.md").read_text() == "c"
    with pytest.raises(IsADirectoryError):
        write_output(tmp_path, "d")
    assert not list(tmp_path.glob(".*.tmp")), "a temporary was left behind"


def test_tune_outputs_follow_symlinks(tmp_path, capsys):
    md, js = tmp_path / "real.md", tmp_path / "real.json"
    (tmp_path / "md").symlink_to(md)
    (tmp_path / "js").symlink_to(js)
    code, out, err = clbench(capsys, "tune", "--scenario", "split-digits", "--strategy",
                             "naive", "--space", "lr=0.05", "--budget", "smoke", "--device",
                             "cpu", "--results", tmp_path / "r", "--markdown", tmp_path / "md",
                             "--json", tmp_path / "js")
    assert code == 0, err
    assert (tmp_path / "md").is_symlink() and (tmp_path / "js").is_symlink()
    assert "lr" in md.read_text() and json.loads(js.read_text())


def test_result_documents_follow_the_umask(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        code, out, err = clbench(capsys, "run", "--scenario", "split-digits", "--strategy",
                                 "naive", "--budget", "smoke", "--device", "cpu", "--results",
                                 tmp_path / "r")
    finally:
        os.umask(old)
    assert code == 0, err
    docs = list((tmp_path / "r").glob("*.json"))
    assert docs and all(stat.S_IMODE(d.stat().st_mode) == 0o644 for d in docs)
