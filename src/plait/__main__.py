import sys

from plait.tools.cli import main

sys.exit(main())
