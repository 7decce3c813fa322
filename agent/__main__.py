"""`python -m agent` = `dd0c-cost-agent`."""

import sys

from agent.main import main

sys.exit(main())
