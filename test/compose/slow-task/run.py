"""Compose smoke-test task: runs for a few seconds so several tasks overlap."""
import json
import os
import time

task_id = os.environ.get("TASK_ID", "local")
print(f"smoke task {task_id} starting", flush=True)
time.sleep(float(os.environ.get("SMOKE_SLEEP", "4")))
os.makedirs(os.environ.get("RESULT_DIR", "result"), exist_ok=True)
with open(os.path.join(os.environ.get("RESULT_DIR", "result"), "done.json"), "w") as f:
    json.dump({"task_id": task_id}, f)
print(f"smoke task {task_id} done", flush=True)
