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
        args = parser.parse_args(list(words) + required_args(options))
        assert args.handler is handler


def test_help_lists_every_command_and_group_with_its_one_line(capsys):
    parents = {words[:-1] for words, _, _ in cli.COMMANDS if len(words) > 1}
    for parent in sorted(parents | {()}):
        with pytest.raises(SystemExit) as done:
            cli.main(list(parent) + ["--help"])
        assert done.value.code == 0
        listing = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
        children = {w[len(parent)] for w, _, _ in cli.COMMANDS if len(w) > len(parent) and w[:len(parent)] == parent}
        for child in children:
            line = " ".join(cli.command_help(parent + (child,)).split())
            assert line.endswith(".") and "%s %s" % (child, line) in listing, (parent, child)


def test_every_command_says_in_one_line_what_it_does():
    for words, handler, _ in cli.COMMANDS:
        doc = (handler.__doc__ or "").strip()
        assert doc and len(doc.splitlines()) == 1 and doc.endswith("."), words


@pytest.mark.parametrize("argv, message", [
    ([], "pumpsim: give a command (pumpsim --help lists them)"),
    (["rig"], "pumpsim: rig: give a command (pumpsim rig --help lists them)"),
    (["rig", "fault"], "pumpsim: rig fault: give a command (pumpsim rig fault --help lists them)"),
])
def test_a_group_without_its_command_says_where_the_list_is(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert (code, err.strip()) == (2, message)


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


def required_args(options):
    args = []
    for flags, kwargs in options:
        value = kwargs.get("choices", ["1"])[0]
        if kwargs.get("required") or not flags[0].startswith("-"):
            args += [flags[0], value] if flags[0].startswith("-") else [value]
    return args


def test_every_command_takes_json_before_or_after_it():
    parser = cli.build_parser()
    for words, _, options in cli.COMMANDS:
        rest = required_args(options)
        assert parser.parse_args(["--json", *words, *rest]).json is True, words
        assert parser.parse_args([*words, *rest, "--json"]).json is True, words
        assert parser.parse_args([*words, *rest]).json is False, words


@pytest.mark.parametrize("before", [True, False])
def test_json_output_and_json_errors_wherever_json_stands(capsys, tmp_path, before):
    import json

    key = tmp_path / "k.hex"
    argv = ["keygen", str(key)]
    code, out, err = run(capsys, *(["--json", *argv] if before else [*argv, "--json"]))
    assert (code, json.loads(out), err) == (0, {"key": str(key)}, "")
    # A refusal, as one line of JSON on stderr, nothing on stdout, the key left as it was.
    written = key.read_text()
    code, out, err = run(capsys, *(["--json", *argv] if before else [*argv, "--json"]))
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert json.loads(err) == {"error": "%s exists: not overwriting a key" % key, "exit": 2}
    assert key.read_text() == written


def test_usage_errors_and_unreachable_boards_come_as_json_too(capsys):
    import json

    code, out, err = run(capsys, "--json", "frobnicate")
    assert code == 2 and "frobnicate" in json.loads(err)["error"]
    code, out, err = run(capsys, "status", "--json")
    assert (code, json.loads(err)["exit"]) == (2, 2) and "which pump" in json.loads(err)["error"]
    code, out, err = run(capsys, "--port", "/dev/null-nothing", "status", "--json")
    assert (code, json.loads(err)["exit"]) == (1, 1) and "cannot open" in json.loads(err)["error"]


def test_every_option_says_what_it_takes_and_every_help_renders(capsys):
    for words, _, options in cli.COMMANDS:
        for flags, kwargs in options:
            assert kwargs.get("help"), (words, flags)
        with pytest.raises(SystemExit) as done:
            cli.main([*words, "--help"])
        assert done.value.code == 0 and "usage: pumpsim %s" % " ".join(words) in capsys.readouterr().out


@pytest.mark.parametrize("option, unit", [
    ("--volume-ml", "mL"), ("--concentration-ug-per-ml", "µg/mL"), ("--daily-dose-ug", "µg"),
    ("--lockout-minutes", "minutes"), ("--prime-ul", "µL"), ("--clock-ms", "ms"), ("--volts", "V"),
    ("--discrepancy-limit-pct", "%"), ("--reminder-lead-days", "days"),
])
def test_an_option_with_a_unit_in_its_name_gives_the_unit_in_its_help(option, unit):
    helps = [kwargs["help"] for _, _, options in cli.COMMANDS for flags, kwargs in options if option in flags]
    assert helps and all(unit in h for h in helps), (option, helps)


def test_shell_completion_is_written_from_the_parser_and_knows_every_command(capsys):
    assert cli.main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    for words, _, options in cli.COMMANDS:
        assert words[-1] in script, words
        for flags, _ in options:
            assert all(flag in script for flag in flags if flag.startswith("--")), (words, flags)
    assert cli.main(["completion", "fish"]) == 2  # not a shell shtab writes for
