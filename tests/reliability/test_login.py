"""A login that holds against guessing, and sessions that end: real HTTP requests against a served app, from several
client addresses on the loopback (127.0.0.1, .2, .3)."""

import argparse
import http.client
import logging
import time
from urllib.parse import urlencode

import pytest
from conftest import free_port

from studio.door import passwords
from studio.ui import security


def post_login(port: int, user: str, password: str, client: str = "127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(client, 0))
    conn.request("POST", "/login", body=urlencode({"username": user, "password": password}),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    body = response.read().decode()
    cookie = response.getheader("set-cookie") or ""
    conn.close()
    return response.status, response.getheader("retry-after"), body, cookie


def get(port: int, path: str, cookie: str = ""):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = conn.getresponse()
    body = response.read().decode(errors="replace")
    conn.close()
    return response.status, body


def session_cookie(set_cookie: str) -> str:
    token = next(p for p in set_cookie.split(",") if "access-token-unsecure" in p)
    return token.split(";")[0].strip()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Launch the app with a password (plain ann, hashed bob in an --auth-file) and short locks."""
    from studio.ui.app import launch

    monkeypatch.setattr(security, "LOCK_BASE_S", 2.0)
    auth_file = tmp_path / "users"
    auth_file.write_text(f"# made by python -m studio hash-password\nbob:{passwords.hash_password('b0b-pw')}\n")
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    security.audit.addHandler(handler)
    port = free_port()
    args = argparse.Namespace(host="127.0.0.1", port=port, share=False, auth="ann:s3cret", auth_file=str(auth_file),
                              session_hours=2 / 3600, runs_dir=str(tmp_path / "runs"), max_upload_mb=5, config=None)
    demo = launch(args, block=False)
    yield port, records
    demo.close()
    security.audit.removeHandler(handler)


def test_guessing_is_locked_out_per_client_and_per_user(served):
    port, records = served
    for _ in range(6):
        status, _, _, _ = post_login(port, "ann", "wrong")
        assert status in (400, 429)
    status, retry, body, _ = post_login(port, "ann", "s3cret")  # the right password, during the lock
    assert status == 429 and int(retry) >= 2 and "Too many failed logins" in body
    status, _, _, _ = post_login(port, "bob", "b0b-pw")  # the same client, another user: the client is locked
    assert status == 429
    status, _, _, _ = post_login(port, "bob", "b0b-pw", client="127.0.0.2")  # another client, another user
    assert status == 200
    status, _, _, _ = post_login(port, "ann", "s3cret", client="127.0.0.3")  # another client, the locked user
    assert status == 429
    time.sleep(int(retry) + 0.5)  # after the wait, the right password works, and resets the count
    status, _, _, cookie = post_login(port, "ann", "s3cret")
    assert status == 200 and "access-token" in cookie
    status, _, _, _ = post_login(port, "ann", "wrong")
    assert status == 400  # counting starts again from zero
    lines = [r for r in records if r.startswith("login")]
    assert any(r.startswith("login locked client=127.0.0.1 user='ann'") for r in lines)
    assert any(r.startswith("login failed client=127.0.0.1 user='ann'") for r in lines)
    assert any(r.startswith("login ok client=127.0.0.2 user='bob'") for r in lines)
    assert not any("s3cret" in r or "b0b-pw" in r or "wrong" in r for r in records)  # never a password


def test_the_backoff_grows_and_is_capped():
    guard = security.LoginGuard()
    waits = []
    for _ in range(9):
        guard.failed("10.0.0.1", "eve")
        waits.append(round(guard.retry_after("10.0.0.1", "eve")))
    assert waits[:4] == [0, 0, 0, 0] and waits[4] > 0
    assert waits[5] > waits[4] and waits[6] > waits[5]  # doubling
    for _ in range(30):
        guard.failed("10.0.0.1", "eve")
    assert guard.retry_after("10.0.0.1", "eve") <= security.LOCK_MAX_S
    guard.succeeded("10.0.0.1", "eve")
    assert guard.retry_after("10.0.0.1", "eve") == 0


def test_an_idle_session_ends_and_goes_back_to_the_login_page(served):
    port, records = served
    status, _, _, cookie = post_login(port, "bob", "b0b-pw", client="127.0.0.4")
    assert status == 200
    token = session_cookie(cookie)
    status, _ = get(port, "/gradio_api/info", token)
    assert status == 200  # logged in
    time.sleep(3)  # longer than the 2-second session of this app
    status, _ = get(port, "/gradio_api/info", token)
    assert status == 401
    status, page = get(port, "/", token)
    assert status == 200 and '"auth_required":true' in page.replace(" ", "")  # the login page
    assert any(r.startswith("session expired user='bob'") for r in records)


def test_passwords_are_hashed_and_checked_in_constant_time(tmp_path):
    stored = passwords.hash_password("pw")
    assert stored.startswith("scrypt$") and "pw" not in stored.split("$", 4)[-1]
    assert passwords.check_password("pw", stored) and not passwords.check_password("pW", stored)
    assert passwords.check_password("plain", "plain") and not passwords.check_password("plain", "plan")
    check = security.checker({"ann": stored})
    assert check("ann", "pw") and not check("ann", "x") and not check("nobody", "pw")
    bad = tmp_path / "bad"
    bad.write_text("ann:plaintext\n")
    from studio.errors import StudioError

    with pytest.raises(StudioError, match="plain passwords are not accepted"):
        passwords.read_auth_file(str(bad))


def test_hash_password_cli_and_launch_flags():
    import subprocess
    import sys

    from conftest import REPO

    import launch

    out = subprocess.run([sys.executable, "-m", "studio", "hash-password", "ann", "--stdin"], input="s3cret\n",
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ann:scrypt$")
    assert passwords.check_password("s3cret", out.stdout.strip().split(":", 1)[1])
    args = launch.parse_args(["--auth-file", "users.txt", "--session-hours", "1.5"])
    assert args.auth_file == "users.txt" and args.session_hours == 1.5
    assert launch.exposure_warning(launch.parse_args(["--host", "0.0.0.0", "--auth-file", "u"])) is None
