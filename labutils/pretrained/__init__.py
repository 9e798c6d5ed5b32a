"""Pretrained weights that install as a package: EfficientNet-Lite0 and the safe reader of their file format."""
