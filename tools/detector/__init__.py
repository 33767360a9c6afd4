"""The project's own learned change detector: a siamese EfficientNet-Lite0 trained on a CPU, run through ONNX."""
