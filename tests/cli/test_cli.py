"""The CLI: a table of commands, one-line refusals, exit codes."""

import pytest

from pumpsim import cli


def run(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_table_entry_is_reachable():
    parser = cli.build_parser()
    for words, handler, options in cli.COMMANDS:
        required = []
        for flags, kwargs in options:
            value = kwargs.get("choices", ["1"])[0]
            if kwargs.get("required") or not flags[0].startswith("-"):
                required += [flags[0], value] if flags[0].startswith("-") else [value]
        args = parser.parse_args(list(words) + required)
        assert args.handler is handler


@pytest.mark.parametrize("argv, words", [
    (["frobnicate"], "frobnicate"),
    ([], "command"),
    (["program", "continuous"], "--daily-dose-ug"),
    (["--dir", "nowhere-dir", "status"], "no virtual board"),
    (["--port", "/dev/null-nothing", "status"], "cannot open"),
    (["status"], "which pump"),
    (["rig", "measure"], "which rig"),
])
def test_refusals_are_one_line(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and words in err


@pytest.mark.parametrize("argv, words", [
    (["--port", "x", "--key", "k", "program", "continuous", "--daily-dose-ug", "0"], "daily dose"),
    (["--port", "x", "--key", "k", "program", "continuous", "--daily-dose-ug", "-5"], "daily dose"),
    (["--port", "x", "--key", "k", "refill", "--volume-ml", "20", "--concentration-ug-per-ml", "0"],
     "concentration"),
    (["--port", "x", "--key", "k", "refill", "--volume-ml", "abc", "--concentration-ug-per-ml", "2000"],
     "volume"),
    (["--rig", "loop://", "rig", "advance", "abc"], "abc"),
])
def test_bad_values_are_refused_before_anything_is_sent(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and words in err


def test_keygen_never_overwrites(capsys, tmp_path):
    path = tmp_path / "k"
    assert run(capsys, "keygen", str(path))[0] == 0
    key = path.read_text()
    assert len(bytes.fromhex(key.strip())) == 32
    assert run(capsys, "keygen", str(path))[0] == 2
    assert path.read_text() == key
