"""Thin wrapper around `gcdesign study latency`.

Usage: `python studies/study_latency.py [--out DIR] [--quick]`. The study itself
lives in gcdesign/studies/latency.py so the installed CLI finds it.
"""

import sys

from gcdesign.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "latency", *sys.argv[1:]]))
