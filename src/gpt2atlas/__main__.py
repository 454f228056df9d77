"""`python -m gpt2atlas` runs the command line."""

import sys

from gpt2atlas.cli.main import main

sys.exit(main())
