import sys

from pipelines.webhooks.cli import main

# Guarded: a sync in a spawned child process imports this module again as __mp_main__.
if __name__ == "__main__":
    sys.exit(main())
