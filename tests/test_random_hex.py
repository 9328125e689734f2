"""Random hex digits from a pool of the OS's random bytes (`reapi._random_hex`): every call gets
digits no other call got, across threads, pools and a fork."""

import os
import re
import threading

from reapi import _random_hex
from reapi._random_hex import SLOT, random_hex


def test_digits_are_hex_of_the_length_asked():
    for digits in (1, 24, 37, SLOT, SLOT + 1, 200):
        assert re.fullmatch(f"[0-9a-f]{{{digits}}}", random_hex(digits))


def test_no_two_calls_share_their_digits_across_pools():
    slots = len(_random_hex._pool[0]) // SLOT
    seen = [random_hex(SLOT) for _ in range(3 * slots)]  # three pools' worth
    assert len(set(seen)) == len(seen)


def test_threads_never_get_the_same_digits():
    found: list[list[str]] = []

    def draw() -> None:
        found.append([random_hex(32) for _ in range(2000)])

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for values in found for value in values]
    assert len(every) == 8000 and len(set(every)) == 8000


def test_a_forked_child_does_not_repeat_its_parents_next_digits():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next digits to the parent, then leave at once
        os.write(write, random_hex(SLOT).encode())
        os._exit(0)
    os.close(write)
    parent = random_hex(SLOT)
    child = os.read(read, SLOT).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(f"[0-9a-f]{{{SLOT}}}", child)
    assert child != parent
