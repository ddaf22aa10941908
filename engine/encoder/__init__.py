"""The encoder a run trained, used elsewhere: rebuilt from its checkpoint (``load``), evaluated
on any data set (``evaluate``), exported as a state_dict, TorchScript and ONNX (``export``),
and its embeddings of a data set written as plain files (``embeddings``)."""

from engine.encoder.export import export_encoder, load_exported
from engine.encoder.load import TrainedEncoder, load_encoder

__all__ = ["TrainedEncoder", "export_encoder", "load_encoder", "load_exported"]
