import sys

from dicompress.cli import main

sys.exit(main())
