import sys

from pipelines.webhooks.cli import main

sys.exit(main())
