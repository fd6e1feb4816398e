"""Thin wrapper around `gcdesign study deadline`.

Usage: `python studies/study_deadline.py [--out DIR] [--quick]`. The study itself
lives in gcdesign/studies/deadline.py so the installed CLI finds it.
"""

import sys

from gcdesign.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "deadline", *sys.argv[1:]]))
