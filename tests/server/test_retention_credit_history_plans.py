"""What the retention of credit rows reads (`retention.credit_history`): ranges of the primary
keys, so that the tables every request writes carry no index for it."""

import shutil
import sqlite3

from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from reapi_server.retention.credit_history import closed_holds, ledger_after


def test_the_job_reads_the_primary_keys_in_order(migrated_template, tmp_path):
    """No index of its own on the tables every request writes: the old holds and ledger rows
    are ranges of the primary keys, read in order (no sort, no scan of the young rows)."""
    path = tmp_path / "reapi.db"
    shutil.copy(migrated_template, path)
    connection = sqlite3.connect(path)
    try:
        statements = [*closed_holds(1.8e9, 500), ledger_after(0, 500)]
        plans = []
        for statement in statements:
            sql = statement.compile(
                dialect=sqlite_dialect(), compile_kwargs={"literal_binds": True}
            )
            plan = connection.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            plans.append(" ".join(str(row[-1]) for row in plan))
    finally:
        connection.close()
    below, above, ledger = plans
    assert "USING INDEX sqlite_autoindex_credit_holds_1 (id<?)" in below, below
    assert "USING INDEX sqlite_autoindex_credit_holds_1 (id>?)" in above, above
    assert "USING INTEGER PRIMARY KEY (rowid>?)" in ledger and "TEMP" not in ledger, ledger
