"""Export checkpoints to ONNX (fp32 or int8) and TorchScript, with parity checks."""

from fcnlab.export.checkpoint import FORMATS, ExportResult, export_checkpoint

__all__ = ["FORMATS", "ExportResult", "export_checkpoint"]
