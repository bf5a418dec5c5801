"""Progress lines with the time left."""

import io

from keras_frcnn.progress import Progress, format_duration, time_left


def test_format_duration():
    assert [format_duration(s) for s in (0, 44.6, 200, 3900, -3)] == ["0 s", "45 s", "3 min 20 s", "1 h 05 min", "0 s"]


def test_time_left_is_the_mean_pace_so_far():
    assert time_left(30.0, 3, 10) == 70.0
    assert time_left(5.0, 0, 10) is None and time_left(5.0, 12, 10) == 0.0


def test_progress_prints_at_the_interval_and_at_the_end():
    now = [100.0]
    out = io.StringIO()
    progress = Progress(4, "generating", stream=out, interval=10.0, clock=lambda: now[0])
    now[0] = 105.0
    progress.update(1)  # 5 s after the start: too soon
    now[0] = 112.0
    progress.update(2)  # 12 s: a line, 12 s for 2 of 4 -> about 12 s left
    now[0] = 115.0
    progress.update(3)  # 3 s after the last line: too soon
    now[0] = 116.0
    progress.update(4)  # the end is always reported
    assert out.getvalue().splitlines() == [
        "generating: 2/4 (50%), 12 s, about 12 s left",
        "generating: 4/4 (100%), 16 s, done",
    ]


def test_quiet_prints_nothing_and_a_log_reports_less_often_than_a_terminal():
    out = io.StringIO()
    quiet = Progress(2, "x", stream=out, quiet=True, interval=0.0)
    quiet.update(1)
    quiet.update(2)
    assert out.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert Progress(1, "x", stream=Terminal()).interval < Progress(1, "x", stream=io.StringIO()).interval
