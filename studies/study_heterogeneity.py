"""Thin wrapper around `gcdesign study heterogeneity`.

Usage: `python studies/study_heterogeneity.py [--out DIR] [--quick]`. The study itself
lives in gcdesign/studies/heterogeneity.py so the installed CLI finds it.
"""

import sys

from gcdesign.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "heterogeneity", *sys.argv[1:]]))
