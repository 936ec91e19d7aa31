"""Instructions per decision, counted by valgrind (callgrind): a figure that does not move with
the machine's load, for comparing two versions of the code on a busy machine.

    python bench/instructions.py [--config b] [--decisions 2000]

Runs the setup of ``bench/decide.py`` (10 000 visitors holding typical data, an offline client
whose tracking thread is stopped) under callgrind three times: with no decision, with one
``get_feature_variation_key`` per visitor (each visitor's first decision, on visitors not used
in the current second, so each is touched too), and with those followed by a second one each
(repeat decisions). Differences divided by the number of decisions give instructions per first
and per repeat decision. Needs ``valgrind`` (Debian package ``valgrind``); takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def child(configuration: str, decisions: int, rounds: int) -> None:
    sys.path.insert(0, HERE)
    import decide  # bench/decide.py: the same configurations and visitor data
    import kameleoon
    from kameleoon.testing import create_client

    document = decide.configuration_b() if configuration == "b" else decide.configuration_a()
    config = kameleoon.KameleoonClientConfig("bench", "bench", max_visitors=100_000)
    client = create_client(document, config=config)
    client._close(timeout=1.0)  # no tracking thread: only the calling thread's work is counted
    rng = random.Random(11)
    codes = [f"{rng.getrandbits(64):016x}" for _ in range(10_000)]
    for code in codes:
        client.add_data(code, *decide.typical_data(rng, kameleoon))
    client._store.now += 5.0  # a later second of the store's clock: first uses touch the record
    for _ in range(rounds):
        for code in codes[:decisions]:
            client.get_feature_variation_key(code, "flag_0")


def instructions(configuration: str, decisions: int, rounds: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
            sys.executable, __file__, "--child", configuration, str(decisions), str(rounds),
        ]  # fmt: skip
        env = dict(os.environ, PYTHONHASHSEED="0")
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=["a", "b"], default="b")
    parser.add_argument("--decisions", type=int, default=2_000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    n = args.decisions
    setup, first, repeat = (instructions(args.config, n, rounds) for rounds in (0, 1, 2))
    print(f"configuration ({args.config}), {n} decisions, instructions counted by callgrind")
    print(f"  first decision of a visitor (touched)  : {(first - setup) / n:9.0f} per call")
    print(f"  repeat decision                        : {(repeat - first) / n:9.0f} per call")


if __name__ == "__main__":
    main()
