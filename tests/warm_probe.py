"""A child for tests/integration/test_children.py: says what it was started with, then sleeps or
exits as its arguments ask (``python -m tests.warm_probe EXIT_CODE [SLEEP_S]``)."""

import json
import os
import sys
import time
from pathlib import Path

WARM = "torch" in sys.modules  # imported before this module ran: forked from the warm process

print(json.dumps({"warm": WARM, "argv": sys.argv[1:], "pid": os.getpid(), "sid": os.getsid(0),
                  "probe_env": os.environ.get("PROBE_ENV"),
                  "worker_only": os.environ.get("PROBE_WORKER_ONLY"),
                  "name": Path("/proc/self/comm").read_text().strip()}))
print("to stderr", file=sys.stderr)
if len(sys.argv) > 2:
    time.sleep(float(sys.argv[2]))
sys.exit(int(sys.argv[1]))
