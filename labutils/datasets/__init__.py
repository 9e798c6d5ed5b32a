"""Where the lab gets data when no folder holds the Kaggle files: the kagglehub download, else the stand-in
generated in their exact format."""
