"""``predict``: letters for picture files and CSV rows from a trained network, and its memory and speed benchmark."""
