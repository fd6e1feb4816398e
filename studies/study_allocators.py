"""Thin wrapper around `gcdesign study allocators`.

Usage: `python studies/study_allocators.py [--out DIR] [--quick]`. The study itself
lives in gcdesign/studies/allocators.py so the installed CLI finds it.
"""

import sys

from gcdesign.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "allocators", *sys.argv[1:]]))
