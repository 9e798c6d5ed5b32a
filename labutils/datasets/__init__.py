"""Data the lab can use when the Kaggle files are not at hand: the stand-in generated in their exact format."""
