"""A sample HiveMind task: prints a few lines, computes something, writes a result file."""
import json
import os
import platform
import time

task_id = os.environ.get("TASK_ID", "local")
result_dir = os.environ.get("RESULT_DIR", "result")
os.makedirs(result_dir, exist_ok=True)

print(f"hello from task {task_id} on Python {platform.python_version()}")
total = 0
for i in range(1, 6):
    total += i * i
    print(f"step {i}: running sum of squares = {total}")
    time.sleep(0.2)

with open(os.path.join(result_dir, "answer.json"), "w") as f:
    json.dump({"task_id": task_id, "sum_of_squares_1_to_5": total}, f)
print("wrote result/answer.json")
