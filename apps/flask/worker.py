"""A background process (app.processes in tests/lab_apps.rs): every second
it writes which release it runs, and when, to heartbeat/worker; on SIGTERM
it notes that it stopped, as a queue worker finishes the job in hand, and
exits."""
import signal
import time
from pathlib import Path

stopping = False


def stop(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
folder = Path("heartbeat")
# The release folder `current` led to when the process started.
release = Path.cwd().name
while not stopping:
    (folder / "worker.tmp").write_text(f"{release} {time.time():.0f}\n")
    (folder / "worker.tmp").replace(folder / "worker")
    time.sleep(1)
with open(folder / "stops", "a") as f:
    f.write(f"stopped {release}\n")
