"""``python -m deltavlm.serving --model tiny``: the server without the agent's command line."""

import sys

from deltavlm.serving.cli import main

sys.exit(main())
