"""Fixtures for the vlzoo.data reader tests."""

import contextlib
import os

import pytest

from vlzoo.data import DataError


@pytest.fixture
def expect_error():
    """``with expect_error(path, record, problem): ...`` asserts a DataError for ``path`` whose record contains
    ``record`` (None: the error has no record) and whose problem contains ``problem``; yields the excinfo."""

    @contextlib.contextmanager
    def check(path, record, problem, kind=DataError):
        with pytest.raises(kind) as info:
            yield info
        error = info.value
        assert error.file == os.fspath(path)
        if record is None:
            assert error.record is None, error
        else:
            assert error.record is not None and str(record) in str(error.record), error
        assert problem in error.problem, error
        message = str(error)
        assert message.startswith(f"{os.fspath(path)}: ")
        assert problem in message and (record is None or f"record {error.record}: " in message)

    return check
