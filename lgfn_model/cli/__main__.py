"""``python -m lgfn_model.cli``: the ``lgfn`` command."""

import sys

from lgfn_model.cli import main

sys.exit(main())
