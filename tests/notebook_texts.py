"""Tiny notebooks (percent-format sources) for the report runner's tests."""

PARAMETERS = """# %% tags=["parameters"]
OUTPUT_DIR = "."
PROFILE = "full"
DATA_DIR = None
"""

#: Writes its metrics.json and prints "done": a notebook that completes in a second.
GOOD = (
    PARAMETERS
    + """
# %%
import json, pathlib
pathlib.Path(OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
pathlib.Path(OUTPUT_DIR, "metrics.json").write_text(json.dumps({"profile": PROFILE}))
print("done")
"""
)

#: Writes its metrics first, then sleeps five minutes: stopped in the middle, it leaves a new
#: metrics.json beside an unfinished notebook.
SLOW = (
    PARAMETERS
    + """
# %%
import json, pathlib
pathlib.Path(OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
pathlib.Path(OUTPUT_DIR, "metrics.json").write_text(json.dumps({"profile": PROFILE, "slow": True}))
print("started the slow cell", flush=True)

# %%
import time
time.sleep(300)
"""
)
