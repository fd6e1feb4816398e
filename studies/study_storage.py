"""Thin wrapper around `gcdesign study storage`.

Usage: `python studies/study_storage.py [--out DIR] [--quick]`. The study itself
lives in gcdesign/studies/storage.py so the installed CLI finds it.
"""

import sys

from gcdesign.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "storage", *sys.argv[1:]]))
