"""The generic-store suites of tests/unit/test_store_*.py run over SQLiteStorage (a temporary
file), driving the stores directly without HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from store_suite import SQLiteBackend  # noqa: E402
from test_store_delete import DeleteSuite  # noqa: E402
from test_store_reads import GetListSuite, WatchSuite  # noqa: E402
from test_store_subresources import ScaleBindingSuite, ServiceAllocationSuite  # noqa: E402
from test_store_writes import CreateSuite, MetaTypesSuite, PatchSuite, UpdateSuite  # noqa: E402


class TestCreateSQLite(SQLiteBackend, CreateSuite):
    pass


class TestUpdateSQLite(SQLiteBackend, UpdateSuite):
    pass


class TestPatchSQLite(SQLiteBackend, PatchSuite):
    pass


class TestDeleteSQLite(SQLiteBackend, DeleteSuite):
    pass


class TestGetListSQLite(SQLiteBackend, GetListSuite):
    pass


class TestWatchSQLite(SQLiteBackend, WatchSuite):
    pass


class TestScaleBindingSQLite(SQLiteBackend, ScaleBindingSuite):
    pass


class TestServiceAllocationSQLite(SQLiteBackend, ServiceAllocationSuite):
    pass


class TestMetaTypesSQLite(SQLiteBackend, MetaTypesSuite):
    pass
