"""Instructions per decision, per ``add_data`` and per visitor's tracking lines, counted by
valgrind (callgrind): figures that do not move with the machine's load, for comparing two
versions of the code on a busy machine.

    python bench/instructions.py [--config b] [--calls 2000]

Runs the setup of ``bench/decide.py`` (visitors holding typical data, an offline client whose
tracking thread is stopped) under callgrind four times, counting only the measured calls: one
``get_feature_variation_key`` per visitor (each visitor's first decision, on visitors not used
in the current second, so each is touched too); a second one each (repeat decisions); one
7-item ``add_data`` per visitor; and, after each visitor's first decision, the building of
every visitor's tracking lines (its data and its exposure) by the tracker in one go. Needs
``valgrind`` (Debian package ``valgrind``); takes a few minutes.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def child(configuration: str, calls: int, what: str) -> None:
    """Sets up, then makes ``calls`` calls of ``what`` through ``itertools.starmap``: callgrind
    counts only what runs inside ``starmap_next`` (``--toggle-collect``), so the setup, the
    other threads and the interpreter's exit are left out."""
    sys.path.insert(0, HERE)
    import decide  # bench/decide.py: the same configurations and visitor data
    import kameleoon
    from kameleoon.testing import create_client

    document = decide.configuration_b() if configuration == "b" else decide.configuration_a()
    config = kameleoon.KameleoonClientConfig("bench", "bench", max_visitors=100_000)
    client = create_client(document, config=config)
    # no background thread: only the calling thread's work is counted (the client is not
    # closed: a closed client refuses tracking, a path that is not the one measured)
    client._updater.stop()
    client._tracker.stop(1.0)
    rng = random.Random(11)
    visitors = [f"{rng.getrandbits(64):016x}" for _ in range(10_000)]
    for code in visitors:
        client.add_data(code, *decide.typical_data(rng, kameleoon))
    codes = visitors[:calls]
    client._store.now += 5.0  # a later second of the store's clock: first uses touch the record
    if what == "lines":  # each visitor's data and first decision, then one build of their lines
        for code in codes:
            client.get_feature_variation_key(code, "flag_0")
        collections.deque(itertools.starmap(client._tracker._build, [(codes,)]), 0)
        return
    if what == "add_data":
        data = decide.typical_data(rng, kameleoon)
        collections.deque(itertools.starmap(client.add_data, [(code, *data) for code in codes]), 0)
        return
    decisions = [(code, "flag_0") for code in codes]
    if what == "repeat":
        for code, flag in decisions:
            client.get_feature_variation_key(code, flag)
    collections.deque(itertools.starmap(client.get_feature_variation_key, decisions), 0)


def instructions(configuration: str, calls: int, what: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
            "--toggle-collect=starmap_next",
            sys.executable, __file__, "--child", configuration, str(calls), what,
        ]  # fmt: skip
        env = dict(os.environ, PYTHONHASHSEED="0")
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=["a", "b"], default="b")
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    n = args.calls
    measured = ("first", "repeat", "add_data", "lines")
    first, repeat, added, built = (instructions(args.config, n, what) for what in measured)
    print(f"configuration ({args.config}), {n} calls each, instructions counted by callgrind")
    print(f"  first decision of a visitor (touched)  : {first / n:9.0f} per call")
    print(f"  repeat decision                        : {repeat / n:9.0f} per call")
    print(f"  add_data, 7 items (touched)            : {added / n:9.0f} per call")
    print(f"  tracking lines of a visitor, built     : {built / n:9.0f} per visitor")


if __name__ == "__main__":
    main()
