"""`python -m wmlib ...`: see wmlib/cli.py."""

from wmlib.cli import main

raise SystemExit(main())
