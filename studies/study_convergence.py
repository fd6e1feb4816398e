"""Thin wrapper around `gcdesign study convergence`.

Usage: `python studies/study_convergence.py [--out DIR] [--quick]`. The study itself
lives in gcdesign/studies/convergence.py so the installed CLI finds it.
"""

import sys

from gcdesign.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "convergence", *sys.argv[1:]]))
