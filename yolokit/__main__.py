import sys

from yolokit.cli import main

sys.exit(main())
