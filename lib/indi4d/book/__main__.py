"""``python -m indi4d.book``: execute the chapters and build the book (what ``make book`` runs)."""

import sys

from .build import main

sys.exit(main())
