"""``supervise``: exit 3 before any rank reported a start is a stall, not a launch failure
(issue 18, part 3): a ``--comm-timeout`` in ``MPI_Init`` on a loaded machine is retried."""

from tests.test_supervise import supervise


def stalled_in_init(marker):
    """A job that stalls in MPI start-up: no rank reports a start; exit 3 (the watchdog's).
    The second attempt (``--resume`` appended) succeeds, as a retry on a quieter machine."""
    script = (
        f'case "$*" in *--resume*) echo \'{{"started": true}}\' > "$DIST_LOGREG_STATUS"; '
        f"exit 0;; esac; touch {marker}; exit 3"
    )
    return ["sh", "-c", script, "job"]


def test_exit_3_before_start_is_a_stall_and_retried(tmp_path):
    marker = tmp_path / "first-attempt-ran"
    r = supervise(
        ["--restarts", "2", "--", *stalled_in_init(marker), "train", "--out", str(tmp_path)]
    )
    assert marker.exists()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "failed to launch" not in r.stdout
    assert "stalled before any rank reported a start (exit status 3" in r.stdout
    assert "completed after 1 failure(s) and 1 restart(s)" in r.stdout


def test_a_real_launch_failure_is_still_not_restarted(tmp_path):
    r = supervise(
        ["--restarts", "2", "--", "sh", "-c", "exit 1", "job", "train", "--out", str(tmp_path)]
    )
    assert r.returncode == 2 and "failed to launch" in r.stdout and "not restarting" in r.stdout
