import sys

from cryptolab.cli import main

sys.exit(main())
