"""`reapi-server users reset-2fa`: the way back in for someone who lost both their app and their
backup codes, after the operator has checked who they are out of band."""

import sqlite3

from tests.web.test_users_cli import cli


def _set(path, sql, *args):
    with sqlite3.connect(path) as db:
        db.execute(sql, args)


def test_an_operator_turns_two_factor_authentication_off(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    cli("accounts", "create", "--email", "lost@example.com", *data)
    database = tmp_path / "reapi.db"
    _set(
        database,
        "UPDATE users SET totp_secret = 'v1.x', totp_enabled_at = 1.0 WHERE email = ?",
        "lost@example.com",
    )
    _set(
        database,
        "INSERT INTO backup_codes (user_id, code_hash, created_at) "
        "SELECT id, 'h', 1.0 FROM users WHERE email = ?",
        "lost@example.com",
    )
    assert "two-factor: on" in cli("users", "show", "--email", "lost@example.com", *data)
    refused = cli("users", "reset-2fa", "--email", "lost@example.com", *data, code=1)
    assert "Aborted" in refused
    done = cli("users", "reset-2fa", "--email", "lost@example.com", "--yes", *data)
    assert "two-factor authentication is off for lost@example.com" in done
    assert "two-factor: off" in cli("users", "show", "--email", "lost@example.com", *data)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT totp_secret, totp_enabled_at FROM users").fetchall() == [
            (None, None)
        ]
        assert db.execute("SELECT count(*) FROM backup_codes").fetchone() == (0,)
        [(template,)] = db.execute("SELECT template FROM outbox_messages").fetchall()
        assert template == "two_factor_changed"
        # Audited as every operator change is: who (the command line), what, whom.
        [(action, via, target)] = db.execute(
            "SELECT action, via, target_user_id FROM audit_log"
        ).fetchall()
        [(user_id,)] = db.execute("SELECT id FROM users").fetchall()
        assert (action, via, target) == ("user.reset_2fa", "cli", user_id)
    assert "no user" in cli(
        "users", "reset-2fa", "--email", "x@example.com", "--yes", *data, code=1
    )
