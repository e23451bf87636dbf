"""Run one benchmark command and append its figures, with their provenance, to a results file.

    python benchmarks/record.py OUTFILE -- CMD [ARGS...]

CMD runs with this process's environment; its stdout streams to the terminal
(stderr is left alone) and is also appended to OUTFILE as a markdown section:
the command as heading, the commit (``(dirty)`` when tracked files differ from
it), the UTC date, the command line to rerun it (with ``AEPIPE_MNIST=...`` when
that is set), the wall seconds and the exit code, then the output in a fenced
block. Exits with CMD's exit code. Uses no part of aepipe.
"""

import datetime
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_SHOWN = ("AEPIPE_MNIST",)  # environment variables that change a figure: shown in the command


def git(*args):
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def commit():
    sha = git("rev-parse", "HEAD")
    if sha is None:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return sha + (" (dirty)" if dirty else "")


def ticks(text, least):
    """A run of backticks longer than any in text, at least `least` long."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(least, longest + 1)


def code(text):
    """text as markdown inline code, whatever backticks it holds."""
    t = ticks(text, 1)
    pad = " " if "`" in text else ""
    return f"{t}{pad}{text}{pad}{t}"


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        sys.exit(f"usage: {Path(sys.argv[0]).name} OUTFILE -- CMD [ARGS...]")
    outfile, cmd = Path(argv[0]), argv[2:]
    # the data's path is this machine's, not part of the figure: recorded as a placeholder to fill in
    env_prefix = "".join(f"{k}=/path/to/mnist.npz " if k == "AEPIPE_MNIST" else f"{k}={shlex.quote(os.environ[k])} "
                         for k in ENV_SHOWN if k in os.environ)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sha = commit()

    captured = bytearray()
    t = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    except OSError as e:
        print(f"record.py: cannot run {cmd[0]}: {e}", file=sys.stderr)
        return 127
    try:
        for line in iter(proc.stdout.readline, b""):
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
            captured += line
        rc = proc.wait()
        if rc < 0:  # killed by a signal: the shell's convention
            rc = 128 - rc
    except KeyboardInterrupt:
        proc.wait()
        rc = 130
    seconds = time.perf_counter() - t

    out = captured.decode(errors="replace").rstrip("\n")
    f = ticks(out, 3)
    section = (f"## {code(shlex.join(cmd))}\n\n"
               f"- commit: {sha}\n"
               f"- date: {date}\n"
               f"- command: {code(env_prefix + shlex.join(cmd))}\n"
               f"- wall: {seconds:.1f} s\n"
               f"- exit code: {rc}{'' if rc == 0 else ' (FAILED: these figures do not count)'}\n\n"
               f"{f}\n{out}\n{f}\n\n")
    outfile.parent.mkdir(parents=True, exist_ok=True)
    with open(outfile, "a", encoding="utf-8") as fh:
        fh.write(section)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
