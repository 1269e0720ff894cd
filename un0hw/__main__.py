"""`python -m un0hw` is the `un0hw` command."""

from un0hw.cli import main

raise SystemExit(main())
