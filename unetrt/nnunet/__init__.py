"""nnU-Net v2 models: export a trained results folder and predict like ``nnUNetPredictor`` on any Runner."""
