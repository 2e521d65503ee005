"""``python -m iot_defender_splunk``: the same as the ``iot-defender-splunk`` command."""

import sys

from iot_defender_splunk.cli import main

sys.exit(main())
