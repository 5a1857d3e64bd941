"""Deployment: inference on videos, online (streaming) inference, ONNX export."""
