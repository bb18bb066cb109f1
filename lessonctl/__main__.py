import sys

from lessonctl.main import main

sys.exit(main())
