"""``python -m sk_medcnn.cli``: the same as the ``sk-medcnn`` command."""

import sys

from ._main import main

sys.exit(main())
