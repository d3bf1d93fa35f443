import sys

from reportgen.isolation import drop_current_folder

drop_current_folder(sys.path)  # before the command imports anything more: see reportgen/isolation.py

from reportgen.cli import main

sys.exit(main())
