"""``python -m sk_medcnn``: the same as the ``sk-medcnn`` command."""

import sys

from .cli import main

sys.exit(main())
