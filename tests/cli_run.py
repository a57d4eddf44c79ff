"""``clbench`` run in process for a test: exit status, stdout and stderr.

Imported as ``cli_run`` (pytest puts ``tests/`` on the path)."""

from __future__ import annotations

from clbench import cli


def clbench(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
