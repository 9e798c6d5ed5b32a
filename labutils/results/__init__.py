"""The results contract: what each notebook's ``metrics.json`` holds, the four notebooks' registry, and the README's table."""
