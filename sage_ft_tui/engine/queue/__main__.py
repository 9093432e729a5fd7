"""`python -m sage_ft_tui.engine.queue HOME [--poll S]`: the scheduler process (see scheduler.py)."""

import sys

from sage_ft_tui.engine.queue.scheduler import main

if __name__ == "__main__":
    sys.exit(main())
