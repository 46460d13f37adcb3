"""The `saattn` console script wires every subcommand."""
from saattn_edu import cli


def test_every_subcommand_is_registered():
    assert {"build-exercises", "grade", "ring"} <= set(cli.COMMANDS)


def test_saattn_ring_runs_and_checks_against_dense(capsys):
    assert cli.main(["ring", "--world-size", "2", "--n", "256", "--causal", "--pattern", "window:64"]) == 0
    out = capsys.readouterr().out
    assert "max |err| vs dense" in out and "world_size=2" in out


def test_saattn_ring_rejects_an_uneven_split():
    import pytest

    with pytest.raises(ValueError, match="257"):
        cli.main(["ring", "--world-size", "2", "--n", "257"])
