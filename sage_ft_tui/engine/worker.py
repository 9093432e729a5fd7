"""`python -m sage_ft_tui.engine.worker RUN [--resume]`: the documented entry point of the
detached training process (docs/ARCHITECTURE.md, "Processes"); the worker itself lives
in `engine.train.worker`."""

import sys

from sage_ft_tui.engine.train.worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
