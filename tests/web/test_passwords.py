"""The password policy and argon2id hashing (parameters in one place, rehash when raised)."""

import time

import pytest

from reapi_server.identity.errors import WeakPassword
from reapi_server.identity.passwords import ARGON2ID, Argon2Params, Passwords, check_policy

EMAIL = "ada@example.com"


@pytest.mark.parametrize(
    "password",
    [
        "twelve chars",  # 12 characters
        "a much longer password than twelve",
        "blue cat sun map",  # a passphrase of four words (16 characters anyway)
        "ab cd ef gh",  # four words, 11 characters
        "Zx9!qLm2#rT8",
    ],
)
def test_policy_accepts(password):
    check_policy(password, email=EMAIL)


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("", "Enter a password"),
        ("short pw", "at least 12 characters"),
        ("elevenchars", "at least 12 characters"),
        ("ab cd ef", "at least 12 characters"),  # three words
        ("password1234", "too easy to guess"),
        ("Password1234", "too easy to guess"),  # compared case-insensitively
        ("correct horse battery staple", "too easy to guess"),
        ("qwertyuiop123", "too easy to guess"),
        ("aaaaaaaaaaaaaaaa", "too easy to guess"),  # too few different characters
        ("ada@example.com", "email address"),
        ("ADA@EXAMPLE.COM", "email address"),
        ("x" * 257, "at most 256"),
    ],
)
def test_policy_refuses_and_never_repeats_the_password(password, says):
    with pytest.raises(WeakPassword) as refused:
        check_policy(password, email=EMAIL)
    assert says in refused.value.message
    assert refused.value.param == "password"
    if password:
        assert password not in refused.value.message and password not in repr(refused.value)


def test_the_local_part_of_the_email_is_refused_too():
    with pytest.raises(WeakPassword):
        check_policy("ada.lovelace.1815", email="ada.lovelace.1815@example.com")


def test_common_list_is_shipped_and_large():
    from reapi_server.identity.passwords import _common

    assert len(_common()) >= 500


async def test_hash_is_argon2id_with_the_parameters_in_one_place():
    hashed = await Passwords().hash("a long enough passphrase")
    assert hashed.startswith("$argon2id$")
    assert f"m={ARGON2ID.memory_cost},t={ARGON2ID.time_cost},p={ARGON2ID.parallelism}" in hashed
    assert await Passwords().verify(hashed, "a long enough passphrase")
    assert not await Passwords().verify(hashed, "a long enough passphrasE")
    assert not await Passwords().verify("not a hash", "anything")


async def test_raising_the_parameters_asks_for_a_rehash():
    old = await Passwords().hash("a long enough passphrase")
    assert not Passwords().needs_rehash(old)
    raised = Passwords(Argon2Params(ARGON2ID.time_cost + 1, ARGON2ID.memory_cost, 1))
    assert raised.needs_rehash(old)
    assert await raised.verify(old, "a long enough passphrase")  # still verifies meanwhile
    assert not raised.needs_rehash(await raised.hash("x"))


async def test_no_hash_takes_as_long_and_never_matches():
    passwords = Passwords()
    real = await passwords.hash("the real password here")
    await passwords.verify(None, "warm up the dummy hash")
    started = time.perf_counter()
    assert not await passwords.verify(None, "the real password here")
    without = time.perf_counter() - started
    started = time.perf_counter()
    assert not await passwords.verify(real, "a wrong password here")
    with_hash = time.perf_counter() - started
    assert without > with_hash / 3  # the same argon2 work, not a shortcut
    # The dummy's own plaintext does not match it either.
    assert not await passwords.verify(None, "reapi: the work of a real verification")
