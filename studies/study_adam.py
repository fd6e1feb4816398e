"""Thin wrapper around `gcdesign study adam`.

Usage: `python studies/study_adam.py [--out DIR] [--quick]`. The study itself
lives in gcdesign/studies/adam.py so the installed CLI finds it.
"""

import sys

from gcdesign.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "adam", *sys.argv[1:]]))
