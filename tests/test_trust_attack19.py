"""Issue 29, the nineteenth attack and the eighteenth's leftovers: each test fails before
its fix."""

from __future__ import annotations

from dist_logreg.cli.main import main as cli_main


def test_a_sweep_point_too_big_for_its_fabric_is_refused_before_any_runs(tmp_path, capsys):
    """T-L1 / V-M4: the second fabric holds 2 hosts and the grid asks for 4 ranks; the
    first point ran (and a partial file was made) before the second was found."""
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'fabric = ["flat:hosts=4,rate=10G", "flat:hosts=2,rate=10G"]\n'
        'ranks = [4]\nalgorithm = ["ring"]\nbytes = ["1M"]\n'
    )
    assert cli_main(["simulate", "--sweep", str(grid), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "point 1" in err and "2 slots, got 4 ranks" in err
    assert "1/2 points" not in err  # nothing ran
    assert not (tmp_path / "o").exists()
