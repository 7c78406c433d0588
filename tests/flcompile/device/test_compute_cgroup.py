"""`flcompile run --compute-cgroup`: the calling thread's id goes to the cgroup's thread file.

The real move is tested in tests/tools/test_testbed.py, in a cgroup the test makes.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from flcompile.device.compute_cgroup import join_compute_cgroup
from flcompile.errors import BadInputError


@pytest.mark.parametrize("name", ["tasks", "cgroup.threads"])
def test_the_calling_threads_id_is_written_to_the_cgroups_thread_file(tmp_path, name) -> None:
    (tmp_path / name).write_text("")
    assert join_compute_cgroup(tmp_path) == tmp_path / name
    assert (tmp_path / name).read_text() == str(threading.get_native_id())


def test_a_folder_that_is_not_a_cgroup_is_refused_in_one_line(tmp_path) -> None:
    with pytest.raises(BadInputError, match="not a cgroup") as raised:
        join_compute_cgroup(tmp_path)
    assert "\n" not in raised.value.one_line()


def test_a_refused_move_is_one_line(tmp_path, monkeypatch) -> None:
    (tmp_path / "tasks").write_text("")

    def refuse(self, text):  # what cgroupfs answers for a thread it will not take
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(BadInputError, match=r"refused the thread \(Invalid argument\)"):
        join_compute_cgroup(tmp_path)
