import sys

from dislab.report.page import main

sys.exit(main())
