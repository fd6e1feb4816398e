"""Thin wrapper around `gcdesign study bits`.

Usage: `python studies/study_bits.py [--out DIR] [--quick]`. The study itself
lives in gcdesign/studies/bits.py so the installed CLI finds it.
"""

import sys

from gcdesign.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "bits", *sys.argv[1:]]))
