"""``python -m solver``: train a net from the command line (see solver.cli);
``python -m solver search ...``: a hyperparameter search (see solver.search_cli)."""

import sys

if sys.argv[1:2] == ["search"]:
    from solver.search_cli import main

    sys.exit(main(sys.argv[2:]))
else:
    from solver.cli import main

    sys.exit(main())
