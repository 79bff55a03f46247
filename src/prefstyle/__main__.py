import sys

from prefstyle.cli import main

sys.exit(main())
